"""The trial summary a sponsor dashboard shows, per cohort, in one statement whatever the trial's size.

Every measure is an aggregate in SQL: one statement joins the trial's cohorts to one grouped pass over
their enrollments, the participants' DLT windows and their adverse-event tallies (counts of enrollments are
DISTINCT, as each enrollment meets several tally rows), and to the open review. The adverse-event measures
add up ``AdverseEventTally`` (kept by triggers in each write's transaction), so the cost grows with the
trial's participants, never with its events; one pass plans faster than a subquery per group of
measures. The statement is plain SQL, not the ORM: the summary is read on every dashboard refresh, and
building four querysets cost more than running them (``bench/summary_scale.py``).
``tests/safety/test_trial_summary.py`` compares the result with a naive count over the rows after every
kind of write.
"""

import zoneinfo
from datetime import date, timedelta

from django.db import connection, models
from django.utils import timezone

from cohorts.models import Cohort
from safety.models import AdverseEvent, SafetyReview
from trial.access import trial_scope_sql
from trial.models import format_cells

GRADES = range(1, 6)
_DATE = models.DateField()

# Plain SQL with the models' tables (tests/safety/test_trial_summary.py runs it on SQLite and PostgreSQL, and checks
# the table names against the models); parameters for every value.
SUMMARY_SQL = """
WITH measures AS (
    SELECT e.cohort_id,
           COUNT(DISTINCT e.id) AS enrolled,
           COUNT(DISTINCT e.id) FILTER (WHERE p.dlt_window_start IS NOT NULL) AS infused,
           COUNT(DISTINCT e.id) FILTER (WHERE p.dlt_window_start <= %(today)s AND p.dlt_window_end >= %(today)s)
               AS in_window,
           MAX(p.dlt_window_end) FILTER (WHERE p.dlt_window_start IS NOT NULL) AS last_window_end,
           COUNT(DISTINCT t.participant_id) FILTER (WHERE t.dlt_status = %(confirmed)s) AS dlts,
           COALESCE(SUM(t.events) FILTER (WHERE t.dlt_status = %(candidate)s), 0) AS candidates,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 1), 0) AS grade_1,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 2), 0) AS grade_2,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 3), 0) AS grade_3,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 4), 0) AS grade_4,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 5), 0) AS grade_5,
           COALESCE(SUM(t.events) FILTER (WHERE t.serious), 0) AS serious
    FROM cohorts_enrollment e
    JOIN cohorts_participant p ON p.id = e.participant_id
    LEFT JOIN safety_adverseeventtally t
           ON t.participant_id = e.participant_id AND t.events > 0 AND p.trial_id = e.trial_id
    WHERE e.trial_id = %(trial)s
    GROUP BY e.cohort_id
)
SELECT c.id, c.sequence, c.capacity, c.state, d.level, d.label, d.cells,
       COALESCE(m.enrolled, 0), COALESCE(m.infused, 0), COALESCE(m.in_window, 0), m.last_window_end,
       COALESCE(m.dlts, 0), COALESCE(m.candidates, 0), COALESCE(m.grade_1, 0), COALESCE(m.grade_2, 0),
       COALESCE(m.grade_3, 0), COALESCE(m.grade_4, 0), COALESCE(m.grade_5, 0), COALESCE(m.serious, 0),
       r.id, r.state
FROM cohorts_cohort c
JOIN trial_doselevel d ON d.id = c.dose_level_id
LEFT JOIN measures m ON m.cohort_id = c.id
LEFT JOIN safety_safetyreview r ON r.cohort_id = c.id AND r.state = %(open)s
WHERE c.trial_id = %(trial)s
ORDER BY c.sequence
"""


def _next_review(state: str, review: int | None, review_state: str | None, infused: int, last_end) -> dict | None:
    if review:
        return {"review": review, "state": review_state, "opens_on": None}
    if state == Cohort.State.OBSERVING and infused:
        return {"review": None, "state": None, "opens_on": str(last_end + timedelta(days=1))}
    return None


# The trial, its first site's zone and the reader's grants (``trial_scope_sql``) in one statement.
TRIAL_SQL = """
SELECT t.id, t.registry_id, t.status,
       (SELECT s.time_zone FROM trial_site s WHERE s.trial_id = t.id ORDER BY s.id LIMIT 1)
FROM trial_trial t
WHERE t.registry_id = %(registry_id)s AND {scope}
"""


def trial_summary_for(registry_id: str, user) -> dict | None:
    """``trial_summary`` of the trial ``registry_id`` if ``user`` sees it (``trial.access``), else None. Two
    statements: the trial with its zone and the user's grants, then the summary."""
    scope, parameters = trial_scope_sql(user, "t.id")
    with connection.cursor() as cursor:
        cursor.execute(TRIAL_SQL.format(scope=scope), {"registry_id": registry_id, **parameters})
        found = cursor.fetchone()
    if found is None:
        return None
    pk, registry, status, zone = found
    return _summary(pk, registry, status, zone)


def trial_summary(trial, *, time_zone: str | None = None) -> dict:
    """What a sponsor dashboard shows per cohort: dose, state, capacity, enrolled, infused, in DLT window,
    DLTs (participants with a confirmed DLT), DLT candidates, AEs by worst grade, serious AEs, and the next
    review (the open one, or the day after the last DLT window ends). Exact, in one statement.

    ``time_zone`` is the trial's first site's zone (the day "today" is counted in); the caller may pass it
    when it read it with the trial (one query fewer), otherwise it is read here."""

    zone = time_zone or trial.sites.order_by("pk").values_list("time_zone", flat=True).first()
    return _summary(trial.pk, trial.registry_id, trial.status, zone)


def _summary(trial: int, registry_id: str, status: str, zone: str) -> dict:
    today: date = timezone.localdate(timezone=zoneinfo.ZoneInfo(zone))
    parameters = {
        "trial": trial,
        "today": connection.ops.adapt_datefield_value(today),
        "open": SafetyReview.State.OPEN,
        "candidate": AdverseEvent.DltStatus.CANDIDATE,
        "confirmed": AdverseEvent.DltStatus.CONFIRMED,
    }
    with connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL, parameters)
        result = cursor.fetchall()
    rows = []
    for row in result:
        (pk, sequence, capacity, state, level, label, cells, enrolled, infused, in_window, last_end, dlts,
         candidates, *by_grade, serious, review, review_state) = row  # fmt: skip
        rows.append(
            {
                "cohort": pk,
                "sequence": sequence,
                "dose_level": level,
                "dose_label": label,
                "cells": cells,
                "cells_display": format_cells(cells),
                "state": state,
                "capacity": capacity,
                "enrolled": enrolled,
                "infused": infused,
                "in_dlt_window": in_window,
                "dlts": dlts,
                "dlt_candidates": candidates,
                "adverse_events_by_grade": {str(g): n for g, n in zip(GRADES, by_grade, strict=True)},
                "serious_adverse_events": serious,
                "next_review": _next_review(state, review, review_state, infused, _DATE.to_python(last_end)),
            }
        )
    return {"trial": registry_id, "status": status, "as_of": str(today), "cohorts": rows}
