"""The trial summary a sponsor dashboard shows, per cohort, in a constant number of queries."""

import zoneinfo
from datetime import timedelta

from django.utils import timezone

from cohorts.models import Cohort, Enrollment
from safety.models import AdverseEvent, SafetyReview


def trial_summary(trial) -> dict:
    """What a sponsor dashboard shows per cohort, in four queries whatever the trial's size:
    dose, state, capacity, enrolled, infused, in DLT window, DLTs, AEs by worst grade, serious AEs,
    and the next review (the open one, or the day the last DLT window ends)."""

    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    cohorts = list(Cohort.objects.filter(trial=trial).select_related("dose_level").order_by("sequence"))
    enrollments = list(Enrollment.objects.filter(trial=trial).select_related("participant"))
    events = list(
        AdverseEvent.objects.filter(participant__trial=trial).only(
            "participant_id", "worst_grade", "serious", "dlt_status"
        )
    )
    open_reviews = {r.cohort_id: r for r in SafetyReview.objects.filter(trial=trial, state=SafetyReview.State.OPEN)}
    cohort_of = {e.participant_id: e.cohort_id for e in enrollments}
    rows = []
    for cohort in cohorts:
        people = [e.participant for e in enrollments if e.cohort_id == cohort.pk]
        infused = [p for p in people if p.dlt_window_start]
        in_window = [p for p in infused if p.dlt_window_start <= today <= p.dlt_window_end]
        mine = [ev for ev in events if cohort_of.get(ev.participant_id) == cohort.pk]
        review = open_reviews.get(cohort.pk)
        if review:
            next_review = {"review": review.pk, "state": review.state, "opens_on": None}
        elif cohort.state == Cohort.State.OBSERVING and infused:
            next_review = {
                "review": None,
                "state": None,
                "opens_on": str(max(p.dlt_window_end for p in infused) + timedelta(days=1)),
            }
        else:
            next_review = None
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
                "enrolled": len(people),
                "infused": len(infused),
                "in_dlt_window": len(in_window),
                "dlts": len({ev.participant_id for ev in mine if ev.dlt_status == AdverseEvent.DltStatus.CONFIRMED}),
                "dlt_candidates": sum(1 for ev in mine if ev.dlt_status == AdverseEvent.DltStatus.CANDIDATE),
                "adverse_events_by_grade": {str(g): sum(1 for ev in mine if ev.worst_grade == g) for g in range(1, 6)},
                "serious_adverse_events": sum(1 for ev in mine if ev.serious),
                "next_review": next_review,
            }
        )
    return {"trial": trial.registry_id, "status": trial.status, "as_of": str(today), "cohorts": rows}
