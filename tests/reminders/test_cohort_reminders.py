"""The cohort services schedule and cancel their reminders in their own transaction."""

import datetime as dt

import pytest

from cohorts import services
from reminders.models import Reminder
from tests.cohorts.test_infusions_support import DAY, SCHEDULE, SH, T0, enrolled_cohort, frozen, infuse, nurse

pytestmark = pytest.mark.django_db


def _visit_reminders(visit):
    return {r.kind: r for r in Reminder.objects.filter(subject=f"visit:{visit.pk}")}


@pytest.fixture
def cohort_of_three(nct_trial):
    return enrolled_cohort(nct_trial, size=3)


def test_completing_an_infusion_schedules_the_window_reminders_of_every_planned_visit(cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    visits = list(participants[0].visits.order_by("target_date"))
    assert Reminder.objects.filter(kind="visit-window-opens").count() == len(visits)
    assert Reminder.objects.filter(kind="visit-window-closes").count() == len(visits)
    d7 = participants[0].visits.get(code="D7")  # window 2026-12-01 .. 2026-12-03
    reminders = _visit_reminders(d7)
    # two days before the window opens, at 08:00 in Nanjing; stored in UTC
    assert reminders["visit-window-opens"].due_at == dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC)
    assert reminders["visit-window-opens"].event_at == dt.datetime(2026, 12, 1, 0, 0, tzinfo=SH)
    assert reminders["visit-window-closes"].due_at == dt.datetime(2026, 12, 3, 8, 0, tzinfo=SH)
    assert reminders["visit-window-opens"].recipient_role == "Site staff"
    assert reminders["visit-window-opens"].dedupe_key == f"visit:{d7.pk}:visit-window-opens"


def test_the_trials_lead_time_moves_the_window_opens_reminder(cohort_of_three, nct_trial):
    nct_trial.visit_reminder_days = 5
    nct_trial.save()
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    d7 = participants[0].visits.get(code="D7")
    assert _visit_reminders(d7)["visit-window-opens"].due_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=SH)


@pytest.mark.parametrize("outcome", ["done", "missed"])
def test_recording_a_visit_cancels_its_reminders_and_no_other(cohort_of_three, outcome):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    d1, d7 = participants[0].visits.get(code="D1"), participants[0].visits.get(code="D7")
    with frozen(dt.datetime(2026, 11, 26, 12, 0, tzinfo=SH)):
        if outcome == "done":
            services.visit_complete(visit=d1, on=dt.date(2026, 11, 26), by=nurse())
        else:
            services.visit_miss(visit=d1, reason="she was travelling", by=nurse())
    assert {r.state for r in _visit_reminders(d1).values()} == {Reminder.State.CANCELLED}
    assert {r.state for r in _visit_reminders(d7).values()} == {Reminder.State.PENDING}


def test_the_sentinels_infusion_schedules_the_end_of_her_observation_and_later_ones_the_stagger_end(
    cohort_of_three,
):
    cohort, participants = cohort_of_three
    sentinel_infusion = infuse(participants[0], SCHEDULE[0])
    sentinel = Reminder.objects.get(kind="sentinel-ended")
    assert sentinel.subject == f"cohort:{cohort.pk}:sentinel"
    assert sentinel.due_at == sentinel_infusion.ended_at + 7 * DAY
    second = infuse(participants[1], SCHEDULE[1])
    stagger = Reminder.objects.get(kind="stagger-ended")
    assert stagger.due_at == second.ended_at + dt.timedelta(hours=24)
    infuse(participants[2], SCHEDULE[2])
    assert Reminder.objects.filter(kind="stagger-ended").count() == 1, "nobody waits after the last infusion"
