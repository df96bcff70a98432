"""The trial summary a sponsor dashboard shows, per cohort, in five queries whatever the trial's size.

Every measure is one grouped query in SQL with no default ordering (``.order_by()``); the adverse-event
measures add up ``AdverseEventTally`` (kept by triggers in each write's transaction), so the cost grows
with the trial's participants, never with its events. ``tests/safety/test_trial_summary.py`` compares the
result with a naive count over the rows after every kind of write.
"""

import zoneinfo
from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from cohorts.models import Cohort, Enrollment
from safety.models import AdverseEvent, AdverseEventTally, SafetyReview

GRADES = range(1, 6)


def _enrollment_measures(trial, today) -> dict[int, dict]:
    """Per cohort: enrolled, infused, in the DLT window today, the last DLT window's end (one query)."""
    infused = Q(participant__dlt_window_start__isnull=False)
    rows = (
        Enrollment.objects.filter(trial=trial)
        .values("cohort_id")
        .annotate(
            enrolled=Count("pk"),
            infused=Count("pk", filter=infused),
            in_dlt_window=Count(
                "pk", filter=Q(participant__dlt_window_start__lte=today, participant__dlt_window_end__gte=today)
            ),
            last_window_end=Max("participant__dlt_window_end", filter=infused),
        )
        .order_by()
    )
    return {row["cohort_id"]: row for row in rows}


def _event_measures(trial) -> dict[int, dict]:
    """Per cohort: events by worst grade, serious events, DLT candidates, participants with a confirmed DLT.

    One grouped query over the tally rows of the trial's enrolled participants (an event belongs to the
    cohort of its participant's enrollment, as everywhere else).
    """
    confirmed = AdverseEvent.DltStatus.CONFIRMED
    rows = (
        AdverseEventTally.objects.filter(participant__trial=trial, events__gt=0, participant__enrollments__isnull=False)
        .values(cohort_id=F("participant__enrollments__cohort_id"))
        .annotate(
            **{f"grade_{g}": Sum("events", filter=Q(worst_grade=g), default=0) for g in GRADES},
            serious=Sum("events", filter=Q(serious=True), default=0),
            candidates=Sum("events", filter=Q(dlt_status=AdverseEvent.DltStatus.CANDIDATE), default=0),
            dlts=Count("participant_id", filter=Q(dlt_status=confirmed), distinct=True),
        )
        .order_by()
    )
    return {row["cohort_id"]: row for row in rows}


def _next_review(cohort: Cohort, review: SafetyReview | None, measures: dict) -> dict | None:
    if review:
        return {"review": review.pk, "state": review.state, "opens_on": None}
    if cohort.state == Cohort.State.OBSERVING and measures.get("infused"):
        return {"review": None, "state": None, "opens_on": str(measures["last_window_end"] + timedelta(days=1))}
    return None


def trial_summary(trial) -> dict:
    """What a sponsor dashboard shows per cohort: dose, state, capacity, enrolled, infused, in DLT window,
    DLTs (participants with a confirmed DLT), DLT candidates, AEs by worst grade, serious AEs, and the next
    review (the open one, or the day after the last DLT window ends). Exact, in five queries."""

    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    cohorts = Cohort.objects.filter(trial=trial).select_related("dose_level").order_by("sequence")
    people = _enrollment_measures(trial, today)
    events = defaultdict(dict, _event_measures(trial))
    open_reviews = {
        r.cohort_id: r for r in SafetyReview.objects.filter(trial=trial, state=SafetyReview.State.OPEN).order_by()
    }
    rows = []
    for cohort in cohorts:
        counts = people.get(cohort.pk, {})
        tally = events[cohort.pk]
        rows.append(
            {
                "cohort": cohort.pk,
                "sequence": cohort.sequence,
                "dose_level": cohort.dose_level.level,
                "dose_label": cohort.dose_level.label,
                "cells": cohort.dose_level.cells,
                "cells_display": cohort.dose_level.cells_display,
                "state": cohort.state,
                "capacity": cohort.capacity,
                "enrolled": counts.get("enrolled", 0),
                "infused": counts.get("infused", 0),
                "in_dlt_window": counts.get("in_dlt_window", 0),
                "dlts": tally.get("dlts", 0),
                "dlt_candidates": tally.get("candidates", 0),
                "adverse_events_by_grade": {str(g): tally.get(f"grade_{g}", 0) for g in GRADES},
                "serious_adverse_events": tally.get("serious", 0),
                "next_review": _next_review(cohort, open_reviews.get(cohort.pk), counts),
            }
        )
    return {"trial": trial.registry_id, "status": trial.status, "as_of": str(today), "cohorts": rows}
