"""factory_boy factories shared by the suite."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from knox.models import AuthToken

from core.roles import SPONSOR
from core.tokens import token_issue
from trial.access import SITE_ROLES
from trial.models import DoseLevel, Site, SiteAssignment, Trial, TrialAssignment


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def sites(self, create, extracted, **kwargs):
        """Site scoping (trial.access): site staff and investigators work at ``sites`` (default: every site
        that exists now); sponsors read ``trials`` (below). Pass ``sites=[]`` for a user assigned nowhere."""
        if create and self.groups.filter(name__in=SITE_ROLES).exists():
            for site in Site.objects.all() if extracted is None else extracted:
                SiteAssignment.objects.get_or_create(user=self, site=site)

    @factory.post_generation
    def trials(self, create, extracted, **kwargs):
        if create and self.groups.filter(name=SPONSOR).exists():
            for trial in Trial.objects.all() if extracted is None else extracted:
                TrialAssignment.objects.get_or_create(user=self, trial=trial)


def token_for(user) -> str:
    """A fresh API token for ``user``, issued by the service (hashed at rest). Many tests move the clock months
    away from the day the token was issued, so its expiry is put far off; tests/api/test_tokens.py holds the
    lifetimes themselves."""
    token, secret = token_issue(user=user)
    AuthToken.objects.filter(pk=token.pk).update(expiry=token.created + dt.timedelta(days=100 * 365))
    return secret


class TrialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trial

    registry_id = factory.Sequence(lambda n: f"NCT9{n:07d}")
    title = "A test trial"
    phase = Trial.Phase.PHASE1
    design = "sequential"
    product = "product X"
    planned_enrollment = 18
    status = Trial.Status.RECRUITING
    protocol_version = "1.0"
    eligible_sex = Trial.Sex.FEMALE
    min_age_years = 45
    max_age_years = 85
    cohort_size = 3
    max_per_dose_level = 6
    dlt_window_days = 28
    sentinel_observation_days = 7
    stagger_hours = 24
    infusion_rate_min = Decimal("20")
    infusion_rate_max = Decimal("25")
    default_drop_factor = 20
    dose_tolerance_pct = Decimal("10")
    review_quorum = 3

    @factory.post_generation
    def readers(self, create, extracted, **kwargs):
        if create:
            assign_existing_users(trial=self)


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    name = factory.Sequence(lambda n: f"Site {n}")
    city = "Nanjing"
    country = "China"
    time_zone = "Asia/Shanghai"

    @factory.post_generation
    def staff(self, create, extracted, **kwargs):
        if create:
            assign_existing_users(site=self)


def assign_existing_users(*, site=None, trial=None) -> None:
    """The suite's default for site scoping (trial.access): users created before a site or trial work there
    too (site staff, investigators) or read it (sponsors), whatever the fixtures' order. The site-scoping
    tests create their users with explicit ``sites=`` / ``trials=`` after the sites exist."""
    users = get_user_model().objects
    for site_ in [site] if site else list(trial.sites.all()) if trial else []:
        for user in users.filter(groups__name__in=SITE_ROLES).distinct():
            SiteAssignment.objects.get_or_create(user=user, site=site_)
    for trial_ in [trial] if trial else []:
        for user in users.filter(groups__name=SPONSOR).distinct():
            TrialAssignment.objects.get_or_create(user=user, trial=trial_)


class DoseLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoseLevel

    trial = factory.SubFactory(TrialFactory)
    level = factory.Sequence(lambda n: n + 1)
    label = factory.LazyAttribute(lambda o: f"Dose {o.level}")
    cells = factory.LazyAttribute(lambda o: 60_000_000 * 2 ** (o.level - 1))


# --- cohorts: participants that pass screening, built through the services as staff would ---

from django.utils import timezone  # noqa: E402

ELIGIBLE_SCREENING = {
    "years_since_last_menses": Decimal("10"),
    "natural_menopause": True,
    "weight_kg": Decimal("55.0"),
    "height_cm": Decimal("158.0"),
    "fracture_history_taken": True,
    "multiple_site_fracture_history": False,
    "t_score_lumbar_l1_l4": Decimal("-3.2"),
    "t_score_total_hip": Decimal("-2.1"),
    "t_score_femoral_neck": Decimal("-2.4"),
    "measurable_lumbar_vertebrae": 4,
    "dxa_impeded": False,
    "frax_major_pct": Decimal("18.0"),
    "frax_hip_pct": Decimal("3.0"),
    "high_fall_risk": False,
    "glucocorticoid_dose_mg_per_day": Decimal("0"),
    "glucocorticoid_duration_months": Decimal("0"),
    "ast_x_uln": Decimal("0.6"),
    "alt_x_uln": Decimal("0.5"),
    "alp_x_uln": Decimal("0.8"),
    "bilirubin_x_uln": Decimal("0.6"),
    "egfr": Decimal("88"),
    "tsh": Decimal("2.1"),
    "tsh_lower_limit": Decimal("0.35"),
    "tsh_upper_limit": Decimal("5.5"),
    "t4_in_range": True,
    "hbv_dna_cps_per_ml": Decimal("0"),
    "hbv_dna_uln": Decimal("20"),
    "hcv_antibody_positive": False,
    "hcv_rna_above_uln": False,
    "syphilis_antibody_positive": False,
    "hiv_antibody_positive": False,
    "bone_treatment_history_taken": True,
    "oral_bisphosphonate_cumulative_months": Decimal("0"),
    "prior_cell_therapy": False,
    "transplant_or_radiation": False,
    "other_trial_history_taken": True,
}


def staff_users() -> tuple:
    """A coordinator (Site staff) and an investigator, as the services need them."""
    from core.roles import INVESTIGATOR, SITE_STAFF

    return UserFactory(username="coordinator", role=SITE_STAFF), UserFactory(username="investigator", role=INVESTIGATOR)


def consent_document(trial, version: str = "1.0"):
    from cohorts.models import ConsentDocument

    return ConsentDocument.objects.get_or_create(
        trial=trial, version=version, defaults={"effective_from": dt.date(2025, 1, 1), "title": "ICF"}
    )[0]


def eligible_participant(trial, *, number: str, judge: bool = True, consent: bool = True, site=None, **overrides):
    """A participant screened, judged and consented through the services: eligible unless overridden."""
    from cohorts import services
    from cohorts.selectors import site_today

    coordinator, investigator = staff_users()
    site = site or trial.sites.order_by("pk").first()
    participant = services.participant_register(
        trial=trial,
        site=site,
        screening_number=number,
        date_of_birth=dt.date(1960, 3, 15),
        sex="F",
        initials="WL",
        by=coordinator,
    )
    services.screening_record_save(
        participant=participant,
        values={**ELIGIBLE_SCREENING, "screening_date": site_today(participant), **overrides},
        fractures=[],
        by=coordinator,
    )
    if judge:
        codes = trial.criteria.filter(needs_judgment=True).exclude(code="I4").values_list("code", flat=True)
        services.judgments_confirm(participant=participant, answers=dict.fromkeys(codes, True), by=investigator)
    if consent:
        services.consent_record(
            participant=participant,
            document=consent_document(trial),
            signed_at=timezone.now() - dt.timedelta(minutes=5),
            by=coordinator,
        )
    participant.refresh_from_db()
    return participant
