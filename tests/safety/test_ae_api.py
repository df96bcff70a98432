"""Adverse events, DLT decisions and reporting clocks over the REST API (/api/v1/)."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from cohorts.models import Cohort
from core.roles import SPONSOR
from safety import services
from safety.models import AdverseEvent, CtcaeTerm, ReportingClock
from tests.factories import UserFactory, eligible_participant, staff_users, token_for
from tests.safety.conftest import DAY0

pytestmark = pytest.mark.django_db
IDENTIFIERS = {"initials", "date_of_birth", "screening_number"}
ERROR_KEYS = {"code", "message", "fields"}


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def _body(who, **overrides) -> dict:
    return {
        "participant": who.pk,
        "verbatim_term": "Fever after infusion",
        "ctcae_term_text": "Fever",
        "onset_date": str(DAY0 + dt.timedelta(days=10)),
        "grade": 3,
        "relationship": "possible",
        "outcome": "recovering",
    } | overrides


def _post(client, who, **overrides):
    return client.post("/api/v1/adverse-events/", _body(who, **overrides), format="json")


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.fixture
def coordinator(db):
    return staff_users()[0]


@pytest.fixture
def investigator(db):
    return staff_users()[1]


@pytest.fixture
def sponsor(db):
    return UserFactory(username="sponsor", role=SPONSOR)


# --- done when ------------------------------------------------------------------------------------------------------


def test_a_related_grade_3_event_on_day_10_recorded_over_the_api_is_a_dlt_candidate_for_the_investigator(
    infused, coordinator
):
    client = _client(coordinator)
    answer = _post(client, infused)
    assert answer.status_code == 201, answer.json()
    event = answer.json()
    assert (event["dlt_status"], event["worst_grade"], event["study_id"]) == ("candidate", 3, infused.study_id)
    assert "day 10" in event["dlt_reason"]
    assert event["cohort"] == Cohort.objects.get().pk
    listed = client.get("/api/v1/adverse-events/?dlt_status=candidate").json()
    assert [e["id"] for e in listed["results"]] == [event["id"]]
    assert AdverseEvent.objects.get().history.latest().history_user == coordinator


def test_a_serious_event_shows_its_24_hour_sponsor_clock_and_turns_overdue_after_24_hours(infused, coordinator):
    client = _client(coordinator)
    aware = timezone.now() - dt.timedelta(hours=2)
    event = _post(
        client,
        infused,
        serious=True,
        sae_hospitalisation=True,
        relationship="not_related",
        site_aware_at=aware.isoformat(),
    ).json()
    assert [(c["kind"], c["overdue"]) for c in event["clocks"]] == [("sponsor_24h", False)]
    assert dt.datetime.fromisoformat(event["clocks"][0]["due_at"]) == aware + dt.timedelta(hours=24)
    clocks = client.get("/api/v1/reporting-clocks/").json()["results"]
    assert [(c["kind"], c["adverse_event"], c["study_id"], c["overdue"]) for c in clocks] == [
        ("sponsor_24h", event["id"], infused.study_id, False)
    ]
    assert client.get("/api/v1/reporting-clocks/?overdue=true").json()["count"] == 0
    with time_machine.travel(aware + dt.timedelta(hours=25), tick=False):
        overdue = client.get("/api/v1/reporting-clocks/?overdue=true").json()["results"]
        assert [c["kind"] for c in overdue] == ["sponsor_24h"] and overdue[0]["overdue"] is True
        assert client.get(f"/api/v1/adverse-events/{event['id']}/").json()["clocks"][0]["overdue"] is True


def test_recording_the_report_stops_the_clock_and_a_second_report_is_a_409(infused, coordinator):
    client = _client(coordinator)
    _post(
        client,
        infused,
        serious=True,
        sae_hospitalisation=True,
        relationship="not_related",
        site_aware_at=(timezone.now() - dt.timedelta(hours=30)).isoformat(),
    )
    clock = ReportingClock.objects.get()
    assert client.get("/api/v1/reporting-clocks/?overdue=true").json()["count"] == 1
    answer = client.post(
        f"/api/v1/reporting-clocks/{clock.pk}/report/", {"reported_to": "Help Therapeutics PV"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["done_by"], answer.json()["reported_to"], answer.json()["overdue"]) == (
        "coordinator",
        "Help Therapeutics PV",
        False,
    )
    assert client.get("/api/v1/reporting-clocks/?overdue=true").json()["count"] == 0
    assert client.get("/api/v1/reporting-clocks/?done=true").json()["count"] == 1
    again = client.post(f"/api/v1/reporting-clocks/{clock.pk}/report/", {"reported_to": "x"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "already_reported")


def test_a_related_death_pauses_the_cohort_and_the_next_enrollment_over_the_api_is_refused_409_cohort_paused(
    infused, nct_trial, coordinator
):
    client = _client(coordinator)
    answer = _post(client, infused, grade=5, outcome="fatal", serious=True, sae_death=True, relationship="possible")
    assert answer.status_code == 201, answer.json()
    cohort = Cohort.objects.get()
    assert cohort.state == Cohort.State.PAUSED
    waiting = eligible_participant(nct_trial, number="S050")
    refused = client.post(f"/api/v1/cohorts/{cohort.pk}/enrollments/", {"participant": waiting.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "cohort_paused" and set(refused.json()) == ERROR_KEYS


# --- sponsors -------------------------------------------------------------------------------------------------------


def test_a_sponsor_token_reads_adverse_events_by_study_id_without_identifiers_and_cannot_write(
    infused, coordinator, investigator, sponsor
):
    event = _post(_client(coordinator), infused, serious=True, sae_hospitalisation=True).json()
    client = _client(sponsor)
    listed = client.get("/api/v1/adverse-events/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["study_id"] == infused.study_id
    one = client.get(f"/api/v1/adverse-events/{event['id']}/").json()
    clocks = client.get("/api/v1/reporting-clocks/").json()
    for body in (listed.json(), one, clocks):
        assert not _keys(body) & IDENTIFIERS
        assert infused.screening_number not in str(body) and infused.initials not in str(body)
    clock = ReportingClock.objects.first()
    writes = [
        client.post("/api/v1/adverse-events/", _body(infused), format="json"),
        client.patch(f"/api/v1/adverse-events/{event['id']}/", {"grade": 4, "reason": "x"}, format="json"),
        client.post(
            f"/api/v1/adverse-events/{event['id']}/dlt-decision/", {"confirm": True, "reason": "x"}, format="json"
        ),
        client.post(f"/api/v1/reporting-clocks/{clock.pk}/report/", {"reported_to": "x"}, format="json"),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403, 403]
    assert all(w.json()["code"] == "permission_denied" for w in writes)
    assert AdverseEvent.objects.count() == 1 and AdverseEvent.objects.get().grade == 3


# --- malformed input, rule violations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grade": "three"}, "grade"),
        ({"grade": 6}, "grade"),
        ({"grade": 0}, "grade"),
        ({"grade": 10**30}, "grade"),
        ({"participant": 10**30}, "participant"),
        ({"ctcae_term": 10**30}, "ctcae_term"),
        ({"verbatim_term": "Fever\x00"}, "verbatim_term"),
        ({"relationship": "maybe"}, "relationship"),
        ({"onset_date": None}, "onset_date"),
        ({"onset_date": "12/11/2026"}, "onset_date"),
        ({"serious": "sometimes"}, "serious"),
        ({"grdae": 3}, "grdae"),
    ],
)
def test_malformed_input_is_a_400_with_field_messages_and_nothing_saved(infused, coordinator, overrides, field):
    body = _body(infused, **overrides)
    if overrides.get("onset_date", "") is None:
        del body["onset_date"]  # missing altogether
    answer = _client(coordinator).post("/api/v1/adverse-events/", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert set(answer.json()) == ERROR_KEYS and field in answer.json()["fields"]
    assert AdverseEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grade": 5, "outcome": "recovered"}, "outcome"),
        ({"serious": True}, "serious"),
        ({"resolution_date": str(DAY0)}, "resolution_date"),
        ({"ctcae_term_text": ""}, "ctcae_term"),
        ({"onset_date": "2020-01-01"}, "onset_date"),
    ],
)
def test_clinically_inconsistent_events_are_refused_by_the_service_with_a_clear_message(
    infused, coordinator, overrides, field
):
    answer = _post(_client(coordinator), infused, **overrides)
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["fields"] and answer.json()["message"]
    assert AdverseEvent.objects.count() == 0


def test_an_event_for_a_participant_without_consent_is_a_409(nct_trial, coordinator):
    participant = eligible_participant(nct_trial, number="S900", consent=False)
    answer = _post(_client(coordinator), participant, onset_date=str(timezone.localdate()))
    assert (answer.status_code, answer.json()["code"]) == (409, "no_consent")


def test_a_missing_or_oversized_id_in_the_url_is_a_404(infused, coordinator):
    client = _client(coordinator)
    for bad in ("abc", str(10**30), "999999"):
        assert client.get(f"/api/v1/adverse-events/{bad}/").status_code == 404
        assert (
            client.post(f"/api/v1/reporting-clocks/{bad}/report/", {"reported_to": "x"}, format="json").status_code
            == 404
        )


def test_a_bad_filter_value_is_a_400(infused, coordinator):
    client = _client(coordinator)
    for query in (
        "grade=three",
        "grade=6",
        "serious=maybe",
        "onset_after=yesterday",
        "cohort=abc",
        "onset_after=2026-12-01&onset_before=2026-11-01",
        "trial=NCT%00",
        "dlt_status=likely",
    ):
        answer = client.get(f"/api/v1/adverse-events/?{query}")
        assert answer.status_code == 400, query
    assert client.get("/api/v1/reporting-clocks/?overdue=perhaps").status_code == 400


# --- follow-ups and DLT decisions -----------------------------------------------------------------------------------


def test_a_follow_up_needs_a_reason_and_raising_the_grade_makes_the_event_a_dlt_candidate(infused, coordinator):
    client = _client(coordinator)
    event = _post(client, infused, grade=2).json()
    assert event["dlt_status"] == "not_candidate"
    url = f"/api/v1/adverse-events/{event['id']}/"
    missing = client.patch(url, {"grade": 3}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["fields"]
    assert client.patch(url, {"reason": "Worsened"}, format="json").status_code == 400  # nothing to update
    assert client.patch(url, {"participant": 1, "reason": "x"}, format="json").status_code == 400  # not changeable
    assert client.put(url, _body(infused), format="json").status_code == 405
    raised = client.patch(url, {"grade": 3, "reason": "Worsened on day 12"}, format="json")
    assert raised.status_code == 200, raised.json()
    assert (raised.json()["dlt_status"], raised.json()["worst_grade"]) == ("candidate", 3)
    lowered = client.patch(url, {"grade": 1, "reason": "Improving"}, format="json").json()
    assert (lowered["grade"], lowered["worst_grade"]) == (1, 3)
    history = AdverseEvent.objects.get().history.order_by("history_date")
    assert [h.history_change_reason for h in history] == ["Adverse event reported", "Worsened on day 12", "Improving"]


def test_only_an_investigator_confirms_a_dlt_over_the_api_and_with_a_reason(infused, coordinator, investigator):
    event = _post(_client(coordinator), infused).json()
    url = f"/api/v1/adverse-events/{event['id']}/dlt-decision/"
    assert _client(coordinator).post(url, {"confirm": True, "reason": "x"}, format="json").status_code == 403
    client = _client(investigator)
    assert client.post(url, {"confirm": True}, format="json").status_code == 400
    assert client.post(url, {"confirm": "yes please", "reason": "x"}, format="json").status_code == 400
    blank = client.post(url, {"confirm": True, "reason": "   "}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()["fields"]
    confirmed = client.post(url, {"confirm": True, "reason": "Grade 3 fever, related"}, format="json")
    assert confirmed.status_code == 200, confirmed.json()
    body = confirmed.json()
    assert (body["dlt_status"], body["dlt_decided_by"], body["dlt_reason"]) == (
        "confirmed",
        "investigator",
        "Grade 3 fever, related",
    )
    again = client.post(url, {"confirm": False, "reason": "changed my mind"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "not_a_dlt_candidate")


def test_adverse_events_filter_by_cohort_grade_seriousness_and_onset_dates(infused, coordinator):
    client = _client(coordinator)
    mild = _post(client, infused, grade=1, onset_date=str(DAY0 + dt.timedelta(days=2))).json()
    severe = _post(
        client, infused, grade=3, serious=True, sae_hospitalisation=True, onset_date=str(DAY0 + dt.timedelta(days=20))
    ).json()
    cohort = Cohort.objects.get().pk

    def ids(query: str) -> list[int]:
        answer = client.get(f"/api/v1/adverse-events/?{query}")
        assert answer.status_code == 200, answer.json()
        return [e["id"] for e in answer.json()["results"]]

    assert ids(f"cohort={cohort}") == [severe["id"], mild["id"]]
    assert ids(f"cohort={cohort + 1}") == []
    assert ids("grade=1") == [mild["id"]]
    assert ids("worst_grade=3") == [severe["id"]]
    assert ids("serious=true") == [severe["id"]]
    assert ids("serious=false") == [mild["id"]]
    assert ids(f"onset_after={DAY0 + dt.timedelta(days=2)}&onset_before={DAY0 + dt.timedelta(days=19)}") == [mild["id"]]
    assert ids(f"onset_after={DAY0 + dt.timedelta(days=3)}") == [severe["id"]]
    assert ids("trial=NCT06949137&dlt_status=not_candidate") == [mild["id"]]


# --- query counts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("events", [1, 6])
def test_adverse_event_and_clock_lists_take_a_constant_number_of_queries(
    django_assert_max_num_queries, infused, coordinator, sponsor, events
):
    for n in range(events):
        services.adverse_event_record(
            participant=infused,
            values={
                "verbatim_term": f"Event {n}",
                "ctcae_term": CtcaeTerm.objects.get_or_create(
                    term="Fever", defaults={"soc": "General disorders and administration site conditions"}
                )[0],
                "onset_date": DAY0 + dt.timedelta(days=n),
                "grade": 1 + n % 3,
                "relationship": "possible",
                "serious": n % 2 == 0,
                "sae_hospitalisation": n % 2 == 0,
            },
            by=coordinator,
        )
    for user in (coordinator, sponsor):
        client = _client(user)
        # +1: is the reader a sponsor (pseudonyms, free text); +2: the reader's site and trial assignments
        with django_assert_max_num_queries(10):
            answer = client.get("/api/v1/adverse-events/?trial=NCT06949137")
        assert answer.json()["count"] == events
        with django_assert_max_num_queries(9):
            answer = client.get("/api/v1/reporting-clocks/")
        assert answer.json()["count"] == ReportingClock.objects.count() > 0
