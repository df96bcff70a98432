"""Times are shown in the sites' zone when every site shares one, else in the settings' default (UTC)."""

import pytest

from tests.factories import SiteFactory, TrialFactory
from trial.selectors import display_time_zone

pytestmark = pytest.mark.django_db


def test_sites_that_all_share_a_zone_show_times_in_it():
    trial = TrialFactory()
    SiteFactory(trial=trial, name="A", time_zone="Asia/Shanghai")
    SiteFactory(trial=trial, name="B", time_zone="Asia/Shanghai")
    assert display_time_zone() == "Asia/Shanghai"


def test_a_third_site_in_another_zone_shows_utc_even_when_the_first_two_share_one(settings):
    trial = TrialFactory()
    SiteFactory(trial=trial, name="A", time_zone="Asia/Shanghai")  # the model's ordering puts A and B first
    SiteFactory(trial=trial, name="B", time_zone="Asia/Shanghai")
    SiteFactory(trial=trial, name="C", time_zone="Europe/Berlin")
    assert display_time_zone() == settings.TIME_ZONE == "UTC"
