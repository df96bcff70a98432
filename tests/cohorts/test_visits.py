"""Follow-up visits: planned from the infusion day by the protocol's schedule, done, missed, or late."""

import datetime as dt

import pytest

from cohorts import selectors, services
from cohorts.models import FollowUpVisit, Participant, ProtocolDeviation
from core.errors import DomainError
from tests.cohorts.test_infusions_support import (
    DAY,
    SH,
    T0,
    enrolled_cohort,
    frozen,
    infuse,
    nurse,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentinel(nct_trial):
    """The cohort's sentinel, infused 08:00–09:00 on 2026-11-25 (day 0) in Nanjing."""
    _, participants = enrolled_cohort(nct_trial, size=1)
    infuse(participants[0], T0)
    return Participant.objects.get(pk=participants[0].pk)


def _visit(participant, code: str) -> FollowUpVisit:
    return participant.visits.get(code=code)


def _on(day: dt.date):
    return frozen(dt.datetime.combine(day, dt.time(10, 0), tzinfo=SH))


@pytest.mark.parametrize(
    ("code", "target", "window_start", "window_end"),
    [
        ("D1", "2026-11-26", "2026-11-26", "2026-11-26"),
        ("D7", "2026-12-02", "2026-12-01", "2026-12-03"),
        ("D14", "2026-12-09", "2026-12-07", "2026-12-11"),
        ("D28", "2026-12-23", "2026-12-21", "2026-12-25"),
        ("M3", "2027-02-23", "2027-02-16", "2027-03-02"),
        ("M6", "2027-05-24", "2027-05-10", "2027-06-07"),
        ("M12", "2027-11-25", "2027-10-26", "2027-12-25"),
    ],
)
def test_the_schedule_dates_each_visit_and_its_window_from_the_infusion_day(
    sentinel, code, target, window_start, window_end
):
    visit = _visit(sentinel, code)
    assert (str(visit.target_date), str(visit.window_start), str(visit.window_end)) == (
        target,
        window_start,
        window_end,
    )
    assert visit.status == FollowUpVisit.Status.SCHEDULED
    assert visit.history.latest().history_change_reason == "Scheduled from the infusion day"


def test_every_visit_of_the_protocol_is_planned_once_when_the_infusion_completes(sentinel):
    assert list(sentinel.visits.order_by("target_date").values_list("code", flat=True)) == [
        "D1",
        "D7",
        "D14",
        "D28",
        "M3",
        "M6",
        "M12",
    ]


def test_the_day_28_visit_is_the_last_day_of_the_dlt_window(sentinel):
    assert _visit(sentinel, "D28").target_date == sentinel.dlt_window_end


@pytest.mark.parametrize(
    ("done_on", "late"),
    [
        (dt.date(2026, 11, 30), True),  # the day before the D7 window opens
        (dt.date(2026, 12, 1), False),
        (dt.date(2026, 12, 2), False),
        (dt.date(2026, 12, 3), False),
        (dt.date(2026, 12, 4), True),  # the day after it closes
    ],
)
def test_a_visit_done_outside_its_window_is_recorded_with_a_minor_deviation(sentinel, done_on, late):
    visit = _visit(sentinel, "D7")
    with _on(done_on):
        services.visit_complete(visit=visit, on=done_on, by=nurse())
    visit.refresh_from_db()
    assert (visit.status, visit.done_on, visit.out_of_window) == (FollowUpVisit.Status.COMPLETED, done_on, late)
    deviations = ProtocolDeviation.objects.filter(visit=visit)
    assert deviations.count() == int(late)
    if late:
        deviation = deviations.get()
        assert (deviation.category, deviation.severity, deviation.source) == ("visit_window", "minor", "system")
        assert deviation.description == (
            f"Day 7 done on {done_on}, outside its window 2026-12-01 to 2026-12-03 (target 2026-12-02, day 7)."
        )


def test_a_missed_visit_keeps_its_reason_and_who_recorded_it(sentinel):
    visit = _visit(sentinel, "D14")
    with _on(dt.date(2026, 12, 12)):
        services.visit_miss(visit=visit, reason="Admitted elsewhere with influenza", by=nurse())
    visit.refresh_from_db()
    assert (visit.status, visit.missed_reason, visit.done_on) == ("missed", "Admitted elsewhere with influenza", None)
    assert visit.recorded_by == nurse()
    sentinel.refresh_from_db()
    assert sentinel.status == Participant.Status.IN_FOLLOW_UP


def test_the_first_recorded_visit_moves_the_participant_to_follow_up(sentinel):
    assert sentinel.status == Participant.Status.INFUSED
    with _on(dt.date(2026, 11, 26)):
        services.visit_complete(visit=_visit(sentinel, "D1"), on=dt.date(2026, 11, 26), by=nurse())
    sentinel.refresh_from_db()
    assert sentinel.status == Participant.Status.IN_FOLLOW_UP


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda v: services.visit_miss(visit=v, reason="", by=nurse()), "reason_required"),
        (lambda v: services.visit_miss(visit=v, reason="flu\x00", by=nurse()), "reason_required"),
        (lambda v: services.visit_complete(visit=v, on="2026-12-02", by=nurse()), "invalid"),
        (lambda v: services.visit_complete(visit=v, on=dt.datetime(2026, 12, 2, tzinfo=SH), by=nurse()), "invalid"),
        (lambda v: services.visit_complete(visit=v, on=dt.date(2026, 12, 5), by=nurse()), "date_in_future"),
        (lambda v: services.visit_complete(visit=v, on=dt.date(2026, 11, 24), by=nurse()), "date_before_infusion"),
    ],
)
def test_a_malformed_visit_outcome_is_refused_and_the_visit_stays_scheduled(sentinel, call, code):
    visit = _visit(sentinel, "D7")
    with _on(dt.date(2026, 12, 2)), pytest.raises(DomainError) as refused:
        call(visit)
    assert refused.value.code == code
    visit.refresh_from_db()
    assert visit.status == FollowUpVisit.Status.SCHEDULED and ProtocolDeviation.objects.count() == 0


def test_a_visit_is_recorded_once(sentinel):
    visit = _visit(sentinel, "D1")
    with _on(dt.date(2026, 11, 26)):
        services.visit_complete(visit=visit, on=dt.date(2026, 11, 26), by=nurse())
        with pytest.raises(DomainError) as refused:
            services.visit_miss(visit=visit, reason="Changed my mind", by=nurse())
    assert refused.value.code == "visit_already_recorded"


def test_the_timeline_shows_the_infusion_the_dlt_window_and_each_visit_with_its_window(sentinel):
    with _on(dt.date(2026, 12, 2)):
        services.visit_complete(visit=_visit(sentinel, "D1"), on=dt.date(2026, 11, 26), by=nurse())
        entries = selectors.participant_timeline(sentinel)
    kinds = [e.kind for e in entries]
    assert kinds == ["enrollment", "infusion", "dlt_window", *["visit"] * 7]
    window = entries[2]
    assert (window.window, window.status) == ("2026-11-25 to 2026-12-23", "Day 7 of 28")
    d1, d7, d14 = entries[3:6]
    assert d1.status == "Done 2026-11-26" and d7.status == "Due now (in window)" and d14.status == "Scheduled"
    assert entries[1].when == "2026-11-25 08:00 – 2026-11-25 09:00"


def test_an_overdue_visit_shows_as_overdue(sentinel):
    entries = selectors.participant_timeline(sentinel, today=dt.date(2026, 11, 25) + 5 * DAY)
    d1 = next(e for e in entries if e.label.startswith("Day 1 "))
    assert d1.status == "Overdue (window closed)" and d1.tone == "warn"
