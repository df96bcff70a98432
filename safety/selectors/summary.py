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
from datetime import UTC, date, timedelta

from django.db import connection, models
from django.utils import timezone

from cohorts.models import Cohort
from core.statements import planned_once
from safety.models import AdverseEvent, SafetyReview
from trial.access import trial_scope_sql
from trial.models import Trial, format_cells

GRADES = range(1, 6)
DAY_NAMES = ("day_before", "utc_day", "day_after")
_DATE = models.DateField()

# Plain SQL with the models' tables (tests/safety/test_trial_summary.py runs it on SQLite and PostgreSQL, and checks
# the table names against the models); parameters for every value. ``{trial}`` picks the trial (by id, or by
# registry id within the reader's grants), and the trial's row comes back on every cohort's row: the summary
# request reads its trial and its numbers in one statement. Today is counted in the trial's first site's
# zone, which the statement itself reads; a zone's date is always UTC's date, the day before or the day
# after (offsets lie between -12 and +14 hours), so the participants in their DLT window are counted for
# those three days and the caller keeps the zone's.
SUMMARY_SQL = """
WITH chosen AS (
    SELECT t.id, t.registry_id, t.status,
           (SELECT s.time_zone FROM trial_site s WHERE s.trial_id = t.id ORDER BY s.id LIMIT 1) AS time_zone
    FROM trial_trial t
    WHERE {trial}
), measures AS (
    SELECT e.cohort_id,
           COUNT(DISTINCT e.id) AS enrolled,
           COUNT(DISTINCT e.id) FILTER (WHERE p.dlt_window_start IS NOT NULL) AS infused,
           COUNT(DISTINCT e.id) FILTER (
               WHERE p.dlt_window_start <= %(day_before)s AND p.dlt_window_end >= %(day_before)s
           ) AS in_window_day_before,
           COUNT(DISTINCT e.id) FILTER (
               WHERE p.dlt_window_start <= %(utc_day)s AND p.dlt_window_end >= %(utc_day)s
           ) AS in_window_utc_day,
           COUNT(DISTINCT e.id) FILTER (
               WHERE p.dlt_window_start <= %(day_after)s AND p.dlt_window_end >= %(day_after)s
           ) AS in_window_day_after,
           MAX(p.dlt_window_end) FILTER (WHERE p.dlt_window_start IS NOT NULL) AS last_window_end,
           COUNT(DISTINCT t.participant_id) FILTER (WHERE t.dlt_status = %(confirmed)s) AS dlts,
           COALESCE(SUM(t.events) FILTER (WHERE t.dlt_status = %(candidate)s), 0) AS candidates,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 1), 0) AS grade_1,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 2), 0) AS grade_2,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 3), 0) AS grade_3,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 4), 0) AS grade_4,
           COALESCE(SUM(t.events) FILTER (WHERE t.worst_grade = 5), 0) AS grade_5,
           COALESCE(SUM(t.events) FILTER (WHERE t.serious), 0) AS serious
    FROM chosen
    JOIN cohorts_enrollment e ON e.trial_id = chosen.id
    JOIN cohorts_participant p ON p.id = e.participant_id
    LEFT JOIN safety_adverseeventtally t
           ON t.participant_id = e.participant_id AND t.events > 0 AND p.trial_id = e.trial_id
    GROUP BY e.cohort_id
)
SELECT chosen.registry_id, chosen.status, chosen.time_zone,
       c.id, c.sequence, c.capacity, c.state, d.level, d.label, d.cells,
       COALESCE(m.enrolled, 0), COALESCE(m.infused, 0),
       COALESCE(m.in_window_day_before, 0), COALESCE(m.in_window_utc_day, 0), COALESCE(m.in_window_day_after, 0),
       m.last_window_end,
       COALESCE(m.dlts, 0), COALESCE(m.candidates, 0), COALESCE(m.grade_1, 0), COALESCE(m.grade_2, 0),
       COALESCE(m.grade_3, 0), COALESCE(m.grade_4, 0), COALESCE(m.grade_5, 0), COALESCE(m.serious, 0),
       r.id, r.state
FROM chosen
LEFT JOIN cohorts_cohort c ON c.trial_id = chosen.id
LEFT JOIN trial_doselevel d ON d.id = c.dose_level_id
LEFT JOIN measures m ON m.cohort_id = c.id
LEFT JOIN safety_safetyreview r ON r.cohort_id = c.id AND r.state = %(open)s
ORDER BY c.sequence
"""
BY_ID = "t.id = %(trial)s"
BY_REGISTRY_ID = "t.registry_id = %(registry_id)s AND {scope}"


def _next_review(state: str, review: int | None, review_state: str | None, infused: int, last_end) -> dict | None:
    if review:
        return {"review": review, "state": review_state, "opens_on": None}
    if state == Cohort.State.OBSERVING and infused:
        return {"review": None, "state": None, "opens_on": str(last_end + timedelta(days=1))}
    return None


def trial_summary_for(registry_id: str, user) -> dict | None:
    """``trial_summary`` of the trial ``registry_id`` if ``user`` sees it (``trial.access``), else None. One
    statement: the reader's grants (``trial_scope_sql``) are a condition of the statement's trial."""
    scope, parameters = trial_scope_sql(user, "t.id")
    return _summary(BY_REGISTRY_ID.format(scope=scope), {"registry_id": registry_id, **parameters})


def trial_summary(trial) -> dict:
    """What a sponsor dashboard shows per cohort: dose, state, capacity, enrolled, infused, in DLT window
    (today in the trial's first site's zone, UTC without a site), DLTs (participants with a confirmed DLT),
    DLT candidates, AEs by worst grade, serious AEs, and the next review (the open one, or the day after the
    last DLT window ends). Exact, in one statement."""
    summary = _summary(BY_ID, {"trial": trial.pk})
    if summary is None:
        raise Trial.DoesNotExist(f"Trial {trial.pk} no longer exists.")
    return summary


def _summary(trial: str, chosen: dict) -> dict | None:
    now = timezone.now()
    utc_day = now.astimezone(UTC).date()
    days = (utc_day - timedelta(days=1), utc_day, utc_day + timedelta(days=1))
    parameters = {
        **chosen,
        **{name: connection.ops.adapt_datefield_value(day) for name, day in zip(DAY_NAMES, days, strict=True)},
        "open": SafetyReview.State.OPEN,
        "candidate": AdverseEvent.DltStatus.CANDIDATE,
        "confirmed": AdverseEvent.DltStatus.CONFIRMED,
    }
    with planned_once() as cursor:
        cursor.execute(SUMMARY_SQL.format(trial=trial), parameters)
        result = cursor.fetchall()
    if not result:
        return None
    registry_id, status, zone = result[0][:3]
    today: date = now.astimezone(zoneinfo.ZoneInfo(zone) if zone else UTC).date()
    which = days.index(today)  # offsets lie within -12 and +14 hours: always one of the three
    rows = []
    for row in result:
        if row[3] is None:  # a trial without cohorts: its one row is the trial's
            continue
        (pk, sequence, capacity, state, level, label, cells, enrolled, infused, *in_windows, last_end, dlts,
         candidates, grade_1, grade_2, grade_3, grade_4, grade_5, serious, review, review_state) = row[3:]  # fmt: skip
        by_grade = (grade_1, grade_2, grade_3, grade_4, grade_5)
        in_window = in_windows[which]
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
