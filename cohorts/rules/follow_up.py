"""The follow-up rules, pure: when a visit's window is over, how many visits a participant missed in a row,
and whether her schedule is done. The services apply them (``cohorts.services.follow_up``).

* A visit's window ends at the **end of its last day at the site** (``window_end`` is a site date): it is
  over from 00:00 site time of the next day, so a visit is missed at 00:00, not at 23:59.
* **Consecutive missed visits** are counted over the recorded visits in the order of the schedule (day
  offset): a visit done resets the count; a visit still scheduled (its window not over) is not known yet
  and neither breaks nor extends the streak. Counting restarts after a dismissed lost-to-follow-up flag
  (``counted_after_day``: the day offset of the last visit of the dismissed streak).
* The **schedule is done** when she has visits and none of them is still scheduled.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

SCHEDULED = "scheduled"
DONE = "completed"
MISSED = "missed"


def window_over(window_end: date, site_today: date) -> bool:
    """Whether a visit window ending on ``window_end`` (inclusive, site date) is over on ``site_today``."""
    return site_today > window_end


@dataclass(frozen=True)
class VisitFact:
    id: int
    day_offset: int
    status: str


@dataclass(frozen=True)
class FollowUpProgress:
    consecutive_missed: int
    last_missed_visit: int | None  # the latest missed visit of the current streak
    schedule_done: bool


def follow_up_progress(visits: Iterable[VisitFact], *, counted_after_day: int | None = None) -> FollowUpProgress:
    """The current streak of missed visits and whether the schedule is done."""
    ordered = sorted(visits, key=lambda v: (v.day_offset, v.id))
    streak, last = 0, None
    for visit in ordered:
        if visit.status == SCHEDULED or (counted_after_day is not None and visit.day_offset <= counted_after_day):
            continue
        if visit.status == DONE:
            streak, last = 0, None
        elif visit.status == MISSED:
            streak, last = streak + 1, visit.id
        else:
            raise ValueError(f"Unknown visit status {visit.status!r}.")
    schedule_done = bool(ordered) and all(v.status != SCHEDULED for v in ordered)
    return FollowUpProgress(consecutive_missed=streak, last_missed_visit=last, schedule_done=schedule_done)


def lost_to_follow_up_due(progress: FollowUpProgress, *, threshold: int) -> bool:
    """The protocol's number of consecutive missed visits is reached (``threshold`` ≥ 1)."""
    if threshold < 1:
        raise ValueError("The number of consecutive missed visits must be at least 1.")
    return progress.consecutive_missed >= threshold
