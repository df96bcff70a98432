import pytest

from cohorts import services
from cohorts.models import Cohort, Enrollment, Participant
from core.errors import DomainError
from tests.factories import eligible_participant, staff_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_cohort(nct_trial):
    _, investigator = staff_users()
    return services.cohort_open_first(trial=nct_trial, by=investigator)


def test_a_screened_judged_and_consented_participant_is_eligible(nct_trial):
    participant = eligible_participant(nct_trial, number="S001")
    assert participant.status == Participant.Status.ELIGIBLE
    assert participant.screening.verdict == "eligible"


def test_first_enrollee_is_the_sentinel_and_gets_a_study_id_and_slot_1(open_cohort, nct_trial):
    coordinator, _ = staff_users()
    enrollment = services.enroll_participant(
        participant=eligible_participant(nct_trial, number="S001"), cohort=open_cohort, by=coordinator
    )
    assert (enrollment.slot, enrollment.is_sentinel) == (1, True)
    enrollment.participant.refresh_from_db()
    assert enrollment.participant.study_id == "9137-001"
    assert enrollment.participant.status == Participant.Status.ENROLLED


def test_fourth_participant_is_refused_when_cohort_of_three_is_full(open_cohort, nct_trial):
    coordinator, _ = staff_users()
    for n in range(3):
        services.enroll_participant(
            participant=eligible_participant(nct_trial, number=f"S00{n}"), cohort=open_cohort, by=coordinator
        )
    open_cohort.refresh_from_db()
    assert open_cohort.state == Cohort.State.FULL
    fourth = eligible_participant(nct_trial, number="S009")
    with pytest.raises(DomainError) as refused:
        services.enroll_participant(participant=fourth, cohort=open_cohort, by=coordinator)
    assert refused.value.code == "cohort_full"
    assert Enrollment.objects.count() == 3
    fourth.refresh_from_db()
    assert fourth.study_id is None and fourth.status == Participant.Status.ELIGIBLE


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda t: eligible_participant(t, number="X1", consent=False), "no_consent"),
        (lambda t: eligible_participant(t, number="X2", judge=False), "judgment_pending"),
        (lambda t: eligible_participant(t, number="X3", weight_kg="39.9"), "not_eligible"),
        (lambda t: eligible_participant(t, number="X4", egfr="59.9"), "not_eligible"),
    ],
)
def test_each_enrollment_rule_refuses_with_its_code_and_writes_nothing(open_cohort, nct_trial, setup, code):
    coordinator, _ = staff_users()
    participant = setup(nct_trial)
    with pytest.raises(DomainError) as refused:
        services.enroll_participant(participant=participant, cohort=open_cohort, by=coordinator)
    assert refused.value.code == code
    assert Enrollment.objects.count() == 0
    participant.refresh_from_db()
    assert participant.study_id is None


def test_the_same_participant_cannot_be_enrolled_twice(open_cohort, nct_trial):
    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S001")
    services.enroll_participant(participant=participant, cohort=open_cohort, by=coordinator)
    with pytest.raises(DomainError) as refused:
        services.enroll_participant(participant=participant, cohort=open_cohort, by=coordinator)
    assert refused.value.code == "already_enrolled"


def test_a_consent_of_an_outdated_version_does_not_allow_enrollment(open_cohort, nct_trial):
    import datetime as dt

    from cohorts.models import ConsentDocument

    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S001")
    old = ConsentDocument.objects.get(version="1.0")
    old.effective_to = dt.date(2025, 12, 31)
    old.save()
    ConsentDocument.objects.create(trial=nct_trial, version="2.0", effective_from=dt.date(2026, 1, 1))
    with pytest.raises(DomainError) as refused:
        services.enroll_participant(participant=participant, cohort=open_cohort, by=coordinator)
    assert refused.value.code == "no_consent"


def test_no_participant_is_enrolled_into_a_paused_cohort(open_cohort, nct_trial):
    coordinator, _ = staff_users()
    Cohort.objects.filter(pk=open_cohort.pk).update(state=Cohort.State.PAUSED, state_before_pause=Cohort.State.OPEN)
    with pytest.raises(DomainError) as refused:
        services.enroll_participant(
            participant=eligible_participant(nct_trial, number="S001"), cohort=open_cohort, by=coordinator
        )
    assert refused.value.code == "cohort_paused"


def test_the_first_cohort_opens_only_once_and_later_cohorts_need_an_escalation_decision(open_cohort, nct_trial):
    _, investigator = staff_users()
    assert (open_cohort.sequence, open_cohort.dose_level.level, open_cohort.capacity) == (1, 1, 3)
    with pytest.raises(DomainError) as refused:
        services.cohort_open_first(trial=nct_trial, by=investigator)
    assert refused.value.code == "escalation_decision_required"
    with pytest.raises(DomainError) as refused:
        services.cohort_open_next(trial=nct_trial, dose_level=nct_trial.dose_levels.get(level=2), by=investigator)
    assert refused.value.code == "escalation_decision_required"
    assert Cohort.objects.count() == 1


def test_site_staff_cannot_open_the_first_cohort(nct_trial):
    coordinator, _ = staff_users()
    with pytest.raises(DomainError) as refused:
        services.cohort_open_first(trial=nct_trial, by=coordinator)
    assert refused.value.code == "permission_denied"
    assert Cohort.objects.count() == 0


def test_the_database_refuses_a_slot_beyond_the_capacity(open_cohort, nct_trial):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S001")
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.create(
            trial=nct_trial,
            participant=participant,
            cohort=open_cohort,
            slot=4,
            cohort_capacity=3,
            enrolled_at=timezone.now(),
            enrolled_by=coordinator,
        )


def test_a_replaced_participant_frees_one_slot_in_a_full_cohort(open_cohort, nct_trial):
    coordinator, _ = staff_users()
    enrolled = [
        services.enroll_participant(
            participant=eligible_participant(nct_trial, number=f"S00{n}"), cohort=open_cohort, by=coordinator
        ).participant
        for n in range(3)
    ]
    services.participant_mark_replaced(participant=enrolled[1], reason="Infusion not given", by=coordinator)
    open_cohort.refresh_from_db()
    assert (open_cohort.state, open_cohort.capacity) == (Cohort.State.OPEN, 4)
    replacement = services.enroll_participant(
        participant=eligible_participant(nct_trial, number="S010"), cohort=open_cohort, by=coordinator
    )
    assert replacement.slot == 4 and not replacement.is_sentinel


def test_a_consent_signed_in_the_evening_west_of_utc_is_current_that_day(nct_trial):
    """The consent date is the site's date, whatever zone the process runs in (UTC in Celery)."""
    import datetime as dt
    import zoneinfo

    import time_machine
    from django.utils import timezone

    from cohorts.selectors import current_consent
    from tests.factories import consent_document

    site = nct_trial.sites.get()
    site.time_zone = "America/New_York"
    site.save()
    new_york = zoneinfo.ZoneInfo("America/New_York")
    evening = dt.datetime(2026, 3, 9, 20, 55, tzinfo=new_york)  # 00:55 UTC on 10 March
    with time_machine.travel(evening + dt.timedelta(minutes=10), tick=False):
        participant = eligible_participant(nct_trial, number="NY1", consent=False)
        coordinator, _ = staff_users()
        services.consent_record(
            participant=participant, document=consent_document(nct_trial), signed_at=evening, by=coordinator
        )
        timezone.activate(zoneinfo.ZoneInfo("UTC"))
        try:
            assert current_consent(participant) is not None
        finally:
            timezone.deactivate()


@pytest.mark.parametrize(
    ("field", "value"),
    [("screening_number", "S\x00"), ("screening_number", "S" * 40), ("sex", "X"), ("date_of_birth", "2099-01-01")],
)
def test_registering_a_participant_with_bad_details_is_refused_and_saves_nothing(nct_trial, field, value):
    import datetime as dt

    coordinator, _ = staff_users()
    details = {"screening_number": "S1", "date_of_birth": dt.date(1960, 1, 1), "sex": "F"}
    details[field] = dt.date.fromisoformat(value) if field == "date_of_birth" else value
    with pytest.raises(DomainError) as refused:
        services.participant_register(trial=nct_trial, site=nct_trial.sites.get(), by=coordinator, **details)
    assert refused.value.status_code == 400 and field in refused.value.fields
    assert Participant.objects.count() == 0


def test_a_judgment_cannot_change_after_enrollment(open_cohort, nct_trial):
    coordinator, investigator = staff_users()
    participant = eligible_participant(nct_trial, number="S001")
    services.enroll_participant(participant=participant, cohort=open_cohort, by=coordinator)
    with pytest.raises(DomainError) as refused:
        services.judgment_confirm(participant=participant, code="E5", satisfied=False, by=investigator)
    assert refused.value.code == "screening_closed"
