"""The pure follow-up rules: when a window is over, consecutive missed visits, a schedule done."""

import datetime as dt

import pytest

from cohorts.rules import VisitFact, follow_up_progress, lost_to_follow_up_due, window_over


@pytest.mark.parametrize(
    ("today", "over"),
    [(dt.date(2026, 12, 2), False), (dt.date(2026, 12, 3), False), (dt.date(2026, 12, 4), True)],
)
def test_a_window_is_over_only_from_the_day_after_its_last_day(today, over):
    assert window_over(dt.date(2026, 12, 3), today) is over


def facts(*statuses: str) -> list[VisitFact]:
    letters = {"D": "completed", "M": "missed", "S": "scheduled"}
    return [VisitFact(id=i + 1, day_offset=[1, 7, 14, 28, 90][i], status=letters[s]) for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("visits", "after", "streak", "last", "done"),
    [
        ("SSSSS", None, 0, None, False),
        ("MSSSS", None, 1, 1, False),
        ("MMSSS", None, 2, 2, False),
        ("MDMSS", None, 1, 3, False),  # a done visit resets the count
        ("DMMSS", None, 2, 3, False),
        ("MMDDD", None, 0, None, True),
        ("DDDDM", None, 1, 5, True),
        ("MMMSS", 7, 1, 3, False),  # counting restarts after a dismissed streak ending on day 7
        ("MSMSS", None, 2, 3, False),  # a visit still scheduled neither breaks nor extends the streak
    ],
)
def test_consecutive_missed_visits_are_counted_in_schedule_order(visits, after, streak, last, done):
    progress = follow_up_progress(facts(*visits), counted_after_day=after)
    assert (progress.consecutive_missed, progress.last_missed_visit, progress.schedule_done) == (streak, last, done)


@pytest.mark.parametrize(("streak", "limit", "due"), [(1, 2, False), (2, 2, True), (3, 2, True), (2, 3, False)])
def test_the_limit_is_reached_at_n_consecutive_missed_visits(streak, limit, due):
    progress = follow_up_progress(facts(*("M" * streak)))
    assert lost_to_follow_up_due(progress, threshold=limit) is due


def test_no_schedule_is_not_a_schedule_done_and_a_limit_below_one_is_an_error():
    assert follow_up_progress([]).schedule_done is False
    with pytest.raises(ValueError):
        lost_to_follow_up_due(follow_up_progress([]), threshold=0)
