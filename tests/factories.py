"""factory_boy factories shared by the suite."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from trial.models import DoseLevel, Site, Trial


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


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


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


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    name = factory.Sequence(lambda n: f"Site {n}")
    city = "Nanjing"
    country = "China"
    time_zone = "Asia/Shanghai"


class DoseLevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoseLevel

    trial = factory.SubFactory(TrialFactory)
    level = factory.Sequence(lambda n: n + 1)
    label = factory.LazyAttribute(lambda o: f"Dose {o.level}")
    cells = factory.LazyAttribute(lambda o: 60_000_000 * 2 ** (o.level - 1))
