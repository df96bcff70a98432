"""Shared by the adverse-event tests: an infused sentinel with a known DLT window, the clock frozen."""

import datetime as dt
import zoneinfo

import pytest
import time_machine

from cohorts import services as cohort_services
from cohorts.models import Participant
from tests.factories import eligible_participant, staff_users

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY0 = dt.date(2026, 11, 2)


@pytest.fixture
def infused(nct_trial):
    """An enrolled sentinel whose infusion day is DAY0: DLT window DAY0..DAY0+28 (as infusion completion sets).

    Screening and consent happen on 2026-10-20; the test itself runs on 2026-12-02 (clock frozen).
    """
    traveller = time_machine.travel(dt.datetime(2026, 10, 20, 9, 0, tzinfo=SHANGHAI), tick=False)
    shifted = traveller.start()
    coordinator, investigator = staff_users()
    cohort = cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    participant = eligible_participant(nct_trial, number="S001")
    cohort_services.enroll_participant(participant=participant, cohort=cohort, by=coordinator)
    Participant.objects.filter(pk=participant.pk).update(
        dlt_window_start=DAY0, dlt_window_end=DAY0 + dt.timedelta(days=28), status=Participant.Status.INFUSED
    )
    participant.refresh_from_db()
    shifted.move_to(dt.datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI))
    yield participant
    traveller.stop()
