"""The trial summary is exact: after every kind of write it equals a naive count over the rows.

The summary adds up ``AdverseEventTally`` rows that database triggers keep; the naive computation below
reads every enrollment and event as Python objects (what the summary did before issue 13) and is the
reference. The whole life of a cohort is driven through the services, plus a bulk insert and a raw SQL
update that no service sees, and the summary is compared after each step.
"""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from cohorts.models import Cohort, Enrollment, Participant
from core.roles import SPONSOR
from safety import services
from safety.models import AdverseEvent, AdverseEventTally, SafetyReview
from safety.selectors import trial_summary, trial_summary_for
from safety.selectors.summary import SUMMARY_SQL
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, enrolled_cohort, frozen, infuse, record_visits
from tests.factories import TrialFactory, UserFactory, staff_users, token_for
from tests.safety.test_escalation_gate import PASSWORD, committee
from trial.models import DoseLevel, Site, Trial

pytestmark = pytest.mark.django_db


def naive_summary(trial) -> list[dict]:
    """Every measure counted in Python over every row (the reference)."""
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    enrollments = list(Enrollment.objects.filter(trial=trial).select_related("participant"))
    cohort_of = {e.participant_id: e.cohort_id for e in enrollments}
    events = list(AdverseEvent.objects.filter(participant__trial=trial))
    rows = []
    for cohort in Cohort.objects.filter(trial=trial).order_by("sequence"):
        people = [e.participant for e in enrollments if e.cohort_id == cohort.pk]
        infused = [p for p in people if p.dlt_window_start]
        mine = [ev for ev in events if cohort_of.get(ev.participant_id) == cohort.pk]
        rows.append(
            {
                "enrolled": len(people),
                "infused": len(infused),
                "in_dlt_window": sum(1 for p in infused if p.dlt_window_start <= today <= p.dlt_window_end),
                "dlts": len({ev.participant_id for ev in mine if ev.dlt_status == "confirmed"}),
                "dlt_candidates": sum(1 for ev in mine if ev.dlt_status == "candidate"),
                "adverse_events_by_grade": {str(g): sum(1 for ev in mine if ev.worst_grade == g) for g in range(1, 6)},
                "serious_adverse_events": sum(1 for ev in mine if ev.serious),
                "state": cohort.state,
            }
        )
    return rows


def assert_exact(trial, django_assert_num_queries) -> list[dict]:
    with django_assert_num_queries(1):  # the trial, its first site's zone and the numbers: one statement
        summary = trial_summary(trial)
    measured = [{key: row[key] for key in naive_summary(trial)[0]} for row in summary["cohorts"]]
    assert measured == naive_summary(trial)
    reader = _sponsor_of(trial)
    reader.get_all_permissions()  # the request's permission check comes first
    with django_assert_num_queries(1):  # the same statement, the trial chosen within the reader's grants
        assert trial_summary_for(trial.registry_id, reader) == summary
    return summary["cohorts"]


def _sponsor_of(trial):
    """A sponsor assigned to ``trial`` (created once), read afresh as a request reads its user."""
    if not get_user_model().objects.filter(username="summary-reader").exists():
        UserFactory(username="summary-reader", role=SPONSOR, is_staff=False, trials=[trial])
    return get_user_model().objects.get(username="summary-reader")


def record(participant, at, **values):
    coordinator, _ = staff_users()
    values = {
        "verbatim_term": "Headache",
        "ctcae_term_text": "Headache",
        "relationship": "not_related",
        "outcome": "recovering",
        "site_aware_at": at,
        **values,
    }
    with frozen(at):
        return services.adverse_event_record(participant=participant, values=values, by=coordinator)


def update(event, at, reason="Follow-up", **values):
    coordinator, _ = staff_users()
    with frozen(at):
        return services.adverse_event_update(event=event, values=values, reason=reason, by=coordinator)


def test_the_summary_equals_a_naive_count_after_every_kind_of_write(nct_trial, django_assert_num_queries):
    coordinator, investigator = staff_users()
    _, people = enrolled_cohort(nct_trial)  # enroll (x3)
    with frozen(T0 - HOUR):
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["enrolled"], row["infused"], row["adverse_events_by_grade"]["1"]) == (3, 0, 0)

    infuse(people[0], T0)  # infuse the sentinel
    for person in people:
        person.refresh_from_db()
    day0 = people[0].dlt_window_start
    with frozen(T0 + 2 * HOUR):
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["infused"], row["in_dlt_window"]) == (1, 1)

    mild = record(people[0], T0 + DAY, grade=1, onset_date=day0 + dt.timedelta(days=1))  # AE create
    with frozen(T0 + DAY):
        assert_exact(nct_trial, django_assert_num_queries)
    update(mild, T0 + 2 * DAY, grade=2)  # AE update: worst grade 1 -> 2
    update(mild, T0 + 3 * DAY, grade=1, resolution_date=day0 + dt.timedelta(days=3), outcome="recovered")  # follow-up
    mild.refresh_from_db()
    assert (mild.grade, mild.worst_grade) == (1, 2)
    serious = record(people[0], T0 + 3 * DAY, grade=2, onset_date=day0 + dt.timedelta(days=2))
    update(serious, T0 + 4 * DAY, serious=True, sae_hospitalisation=True)  # becomes serious
    with frozen(T0 + 4 * DAY):
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["adverse_events_by_grade"]["2"], row["serious_adverse_events"]) == (2, 1)

    candidate = record(
        people[0], T0 + 5 * DAY, grade=3, relationship="possible", onset_date=day0 + dt.timedelta(days=4)
    )
    assert candidate.dlt_status == AdverseEvent.DltStatus.CANDIDATE
    with frozen(T0 + 5 * DAY):
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["dlt_candidates"], row["dlts"]) == (1, 0)
    with frozen(T0 + 6 * DAY):
        services.dlt_decide(
            event=candidate, confirm=False, reason="Unrelated on review", by=investigator
        )  # DLT decision
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["dlt_candidates"], row["dlts"]) == (0, 0)

    infuse(people[1], T0 + 8 * DAY)
    infuse(people[2], T0 + 9 * DAY + 2 * HOUR)
    for person in people:
        person.refresh_from_db()
    second = record(
        people[1],
        T0 + 12 * DAY,
        grade=3,
        relationship="probable",
        onset_date=people[1].dlt_window_start + dt.timedelta(days=2),
    )
    with frozen(T0 + 13 * DAY):
        services.dlt_decide(event=second, confirm=True, reason="Grade 3, probably related", by=investigator)
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert (row["dlts"], row["state"]) == (1, "observing")

    record_visits(people, until=(T0 + 40 * DAY).date())
    with frozen(T0 + 40 * DAY):
        (review,) = services.reviews_open_due()  # review
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
    assert row["next_review"] == {"review": review.pk, "state": "open", "opens_on": None}
    members = committee()
    with frozen(T0 + 40 * DAY + HOUR):
        services.review_propose(review=review, decision="expand", by=members[0])
        for member in members:
            services.review_sign(review=review, user=member, password=PASSWORD, meaning="approve")
        first, opened = assert_exact(nct_trial, django_assert_num_queries)
    assert SafetyReview.objects.get(pk=review.pk).state == SafetyReview.State.EFFECTIVE
    assert (first["state"], opened["state"], opened["enrolled"]) == ("closed", "open", 0)

    # Writes no service sees: a bulk insert and a raw update keep the tally exact too (the triggers).
    AdverseEvent.objects.bulk_create(
        AdverseEvent(
            participant=people[2],
            verbatim_term="Nausea",
            ctcae_term_text="Nausea",
            onset_date=day0 + dt.timedelta(days=20),
            grade=g,
            worst_grade=g,
            relationship="not_related",
            site_aware_at=T0 + 30 * DAY,
            reported_by=coordinator,
        )
        for g in (1, 2, 2, 4)
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE safety_adverseevent SET worst_grade = 4 WHERE id = %s", [mild.pk])
    with frozen(T0 + 41 * DAY):
        first, _ = assert_exact(nct_trial, django_assert_num_queries)
    assert first["adverse_events_by_grade"] == {"1": 1, "2": 3, "3": 2, "4": 2, "5": 0}


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        ("insert", {(2, False, "not_candidate"): 2, (3, True, "not_candidate"): 1}),
        (
            "update the grade",
            {(2, False, "not_candidate"): 1, (3, False, "not_candidate"): 1, (3, True, "not_candidate"): 1},
        ),
        ("update another field", {(2, False, "not_candidate"): 2, (3, True, "not_candidate"): 1}),
        ("delete", {(2, False, "not_candidate"): 1, (3, True, "not_candidate"): 1}),
    ],
)
def test_the_tally_follows_each_insert_update_and_delete_of_an_event(nct_trial, write, expected):
    coordinator, _ = staff_users()
    _, people = enrolled_cohort(nct_trial, size=1)
    values = {
        "participant": people[0],
        "verbatim_term": "x",
        "ctcae_term_text": "x",
        "onset_date": T0.date(),
        "relationship": "not_related",
        "site_aware_at": T0,
        "reported_by": coordinator,
    }
    events = AdverseEvent.objects.bulk_create(
        [
            AdverseEvent(grade=2, worst_grade=2, **values),
            AdverseEvent(grade=2, worst_grade=2, **values),
            AdverseEvent(grade=3, worst_grade=3, serious=True, sae_hospitalisation=True, **values),
        ]
    )
    if write == "update the grade":
        AdverseEvent.objects.filter(pk=events[0].pk).update(grade=3, worst_grade=3)
    elif write == "update another field":
        AdverseEvent.objects.filter(pk=events[0].pk).update(verbatim_term="renamed", worst_grade=2)
    elif write == "delete":
        AdverseEvent.objects.filter(pk=events[0].pk).delete()
    tally = {
        (t.worst_grade, t.serious, t.dlt_status): t.events
        for t in AdverseEventTally.objects.filter(participant=people[0], events__gt=0)
    }
    assert tally == expected


def test_the_summary_statement_reads_the_models_own_tables(nct_trial):
    for model in (Trial, Site, Cohort, Enrollment, Participant, AdverseEventTally, SafetyReview, DoseLevel):
        assert f" {model._meta.db_table} " in SUMMARY_SQL, model
    stranger = UserFactory(username="summary-stranger", role=SPONSOR, is_staff=False, trials=[])
    assert trial_summary_for(nct_trial.registry_id, stranger) is None
    assert trial_summary_for("NCT00000000", _sponsor_of(nct_trial)) is None


def _local(day: dt.date, zone: str, hour: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, 0, second), tzinfo=zoneinfo.ZoneInfo(zone))


# The DLT window is counted on the day of the trial's first site's zone: east of UTC, west of it, on it.
# Its first day begins at that zone's midnight and its last day ends at the next one.
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("the second before the first day", False),
        ("the first day's midnight", True),
        ("the last day's last second", True),
        ("the next midnight", False),
    ],
)
def test_a_participant_is_in_the_dlt_window_on_the_sites_own_days(
    nct_trial, zone, moment, inside, django_assert_num_queries
):
    _, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    people[0].refresh_from_db()
    start, end = people[0].dlt_window_start, people[0].dlt_window_end
    Site.objects.filter(trial=nct_trial).update(time_zone=zone)
    at = {
        "the second before the first day": _local(start, zone) - dt.timedelta(seconds=1),
        "the first day's midnight": _local(start, zone),
        "the last day's last second": _local(end, zone, 23, 59) + dt.timedelta(seconds=59),
        "the next midnight": _local(end + dt.timedelta(days=1), zone),
    }[moment]
    with frozen(at):
        (row,) = assert_exact(nct_trial, django_assert_num_queries)
        assert trial_summary(nct_trial)["as_of"] == str(at.astimezone(zoneinfo.ZoneInfo(zone)).date())
    assert row["in_dlt_window"] == (1 if inside else 0)


def test_a_trial_without_sites_or_cohorts_has_an_empty_summary_dated_in_utc():
    trial = TrialFactory(registry_id="NCT00000001")
    trial.sites.all().delete()
    reader = UserFactory(username="summary-empty", role=SPONSOR, is_staff=False, trials=[trial])
    with time_machine.travel(dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC), tick=False):
        assert trial_summary(trial) == {
            "trial": "NCT00000001",
            "status": trial.status,
            "as_of": "2026-12-01",
            "cohorts": [],
        }
        assert trial_summary_for("NCT00000001", reader) == trial_summary(trial)


def test_a_sponsors_summary_request_takes_three_queries_whatever_the_trials_size(nct_trial, django_assert_num_queries):
    """The display zone (middleware), the token with its user's permissions, the summary with the grants."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(_sponsor_of(nct_trial))}")
    path = f"/api/v1/trials/{nct_trial.registry_id}/summary/"
    with django_assert_num_queries(3):
        empty = client.get(path)
    _, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    people[0].refresh_from_db()
    with frozen(T0 + DAY):
        for grade in (1, 2, 3):
            record(people[0], T0 + DAY, grade=grade, onset_date=people[0].dlt_window_start)
        with django_assert_num_queries(3):
            full = client.get(path)
    assert (empty.status_code, full.status_code) == (200, 200)
    assert (empty.json()["cohorts"], full.json()["cohorts"][0]["enrolled"]) == ([], 3)
