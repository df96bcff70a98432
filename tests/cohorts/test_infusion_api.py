"""The infusion, visit and deviation API: the same rules and codes as the services, over HTTP."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from cohorts.models import Cohort, DripRateReading, FollowUpVisit, Infusion, ProtocolDeviation
from core.roles import SPONSOR
from tests.cohorts.test_infusions_support import (
    DAY,
    HOUR,
    SCHEDULE,
    T0,
    enrolled_cohort,
    frozen,
    infuse,
    infuse_cohort,
    nurse,
    start,
)
from tests.factories import UserFactory, eligible_participant, token_for

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"code", "message", "fields"}
MINUTE = dt.timedelta(minutes=1)
IDENTIFIERS = {"initials", "date_of_birth", "screening_number"}


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def staff(db):
    return _client(nurse())


@pytest.fixture
def sponsor(nct_trial):  # after the trial: a sponsor reads the trials assigned to it (trial.access)
    return _client(UserFactory(username="sponsor", role=SPONSOR))


@pytest.fixture
def cohort_of_three(nct_trial):
    return enrolled_cohort(nct_trial)


def _start_body(person, when=T0, **overrides) -> dict:
    body = {
        "participant": person.pk,
        "started_at": when.isoformat(),
        "product_lot": "HM-2611-01",
        "product_expiry": (when + 6 * HOUR).isoformat(),
        "volume_ml": "100.0",
        "drop_factor": 20,
        "vitals_before": {
            "systolic_bp": 126,
            "diastolic_bp": 78,
            "heart_rate": 70,
            "temperature_c": "36.5",
            "spo2_pct": 98,
            "respiratory_rate": 16,
        },
    }
    return body | overrides


def test_staff_start_an_infusion_and_get_it_back_with_its_vitals(staff, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0):
        response = staff.post("/api/v1/infusions/", _start_body(participants[0]), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["study_id"], body["status"], body["cells_planned"]) == ("9137-001", "in_progress", 60_000_000)
    assert body["vitals"][0]["timepoint"] == "before" and body["administered_by"] == "coordinator"
    assert body["readings"] == []


@pytest.mark.parametrize(
    ("who", "overrides", "status", "code"),
    [
        (1, {}, 409, "sentinel_hold"),
        (0, {"product_expiry": (T0 - HOUR).isoformat()}, 409, "product_expired"),
        (0, {"cells_planned": 240_000_000}, 409, "dose_mismatch"),
        (0, {"volume_ml": "-5"}, 400, "volume_negative"),
        (0, {"volume_ml": "a lot"}, 400, "invalid_volume"),
        (0, {"cells_planned": "6e7"}, 400, "invalid_cells"),
        (0, {"cells_planned": 10**30}, 400, "invalid_cells"),
        (0, {"product_lot": "HM\u0000"}, 400, "invalid"),
        (0, {"started_at": "yesterday"}, 400, "invalid"),
        (0, {"started_at": (T0 + DAY).isoformat()}, 400, "date_in_future"),
        (0, {"drop_factor": 0}, 400, "invalid"),
        (0, {"participant": 10**30}, 400, "invalid"),
        (0, {"vitals_before": {"systolic_bp": "high"}}, 400, "invalid_vitals"),
    ],
)
def test_a_refused_start_answers_with_the_service_code_and_saves_nothing(
    staff, cohort_of_three, who, overrides, status, code
):
    _, participants = cohort_of_three
    with frozen(T0):
        response = staff.post("/api/v1/infusions/", _start_body(participants[who], **overrides), format="json")
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert set(response.json()) == ERROR_KEYS
    assert Infusion.objects.count() == 0


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("paused", "cohort_paused"),
        ("not_enrolled", "not_enrolled"),
        ("already_infused", "already_infused"),
    ],
)
def test_the_rules_answer_409_with_their_code(staff, nct_trial, cohort_of_three, setup, code):
    cohort, participants = cohort_of_three
    participant = participants[0]
    when = T0
    if setup == "paused":
        Cohort.objects.filter(pk=cohort.pk).update(state=Cohort.State.PAUSED, state_before_pause=Cohort.State.FULL)
    elif setup == "not_enrolled":
        with frozen(T0):
            participant = eligible_participant(nct_trial, number="X01")
    else:
        infuse(participant, T0)
        when = T0 + 2 * DAY
    with frozen(when):
        response = staff.post("/api/v1/infusions/", _start_body(participant, when), format="json")
    assert (response.status_code, response.json()["code"]) == (409, code)


@pytest.fixture
def running(cohort_of_three):
    _, participants = cohort_of_three
    return start(participants[0], T0)


@pytest.mark.parametrize(("rate", "flagged"), [("19.9", True), ("20", False), ("25", False), ("25.1", True),
                                               (19.9, True), (25, False)])  # fmt: skip
def test_a_posted_reading_is_flagged_outside_the_range_with_the_id_of_its_deviation(staff, running, rate, flagged):
    with frozen(T0 + HOUR):
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/readings/",
            {"observed_at": (T0 + 10 * 60 * dt.timedelta(seconds=1)).isoformat(), "drops_per_minute": rate},
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["out_of_range"] is flagged
    assert (body["deviation"] is not None) is flagged
    if flagged:
        assert ProtocolDeviation.objects.get(pk=body["deviation"]).drip_rate_reading_id == body["id"]


@pytest.mark.parametrize(
    ("rate", "code"),
    [("fast", "invalid_rate"), ("\u0000", "invalid_rate"), (-1, "rate_not_positive"), (0, "rate_not_positive"),
     (1e30, "invalid_rate"), (10**30, "invalid_rate"), (None, "invalid"), (True, "invalid_rate"),
     ({"drops": 20}, "invalid_rate")],
)  # fmt: skip
def test_a_reading_that_is_not_a_positive_number_is_a_400_with_its_code_and_nothing_is_saved(
    staff, running, rate, code
):
    with frozen(T0 + HOUR):
        body = {"observed_at": (T0 + HOUR).isoformat(), "drops_per_minute": rate}
        response = staff.post(f"/api/v1/infusions/{running.pk}/readings/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, code), response.json()
    assert DripRateReading.objects.count() == 0 and ProtocolDeviation.objects.count() == 0


def test_a_reading_without_a_rate_is_a_400(staff, running):
    with frozen(T0 + HOUR):
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/readings/", {"observed_at": (T0 + HOUR).isoformat()}, format="json"
        )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "drops_per_minute" in response.json()["fields"]


def test_completing_over_the_api_plans_the_visits_and_a_late_visit_opens_a_deviation(staff, running):
    with frozen(T0 + 2 * HOUR):
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/complete/",
            {
                "ended_at": (T0 + HOUR).isoformat(),
                "cells_administered": 60_000_000,
                "volume_ml": "70.0",
                "vitals_after": {"heart_rate": 74},
            },
            format="json",
        )
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["duration_minutes"]) == ("completed", "60.00")
    visits = staff.get(f"/api/v1/visits/?participant={running.participant_id}").json()["results"]
    assert [v["code"] for v in visits] == ["D1", "D7", "D14", "D28", "M3", "M6", "M12"]
    d7 = visits[1]
    with frozen(T0 + 10 * DAY):
        response = staff.post(f"/api/v1/visits/{d7['id']}/complete/", {"on": "2026-12-05"}, format="json")
        assert response.status_code == 200 and response.json()["out_of_window"] is True
        assert staff.post(f"/api/v1/visits/{d7['id']}/miss/", {"reason": "x"}, format="json").json()["code"] == (
            "visit_already_recorded"
        )
        missed = staff.post(f"/api/v1/visits/{visits[2]['id']}/miss/", {"reason": "Travelling"}, format="json")
    assert missed.json()["status"] == "missed"
    deviations = staff.get("/api/v1/deviations/?category=visit_window").json()["results"]
    # A visit done late and a visit missed each open one minor deviation (newest first).
    assert [(d["severity"], d["visit"], d["source"]) for d in deviations] == [
        ("minor", visits[2]["id"], "system"),
        ("minor", d7["id"], "system"),
    ]


def test_an_interrupted_infusion_is_resumed_or_stopped_early_over_the_api(staff, running):
    url = f"/api/v1/infusions/{running.pk}"
    with frozen(T0 + HOUR):
        assert (
            staff.post(
                f"{url}/interruptions/",
                {"stopped_at": (T0 + 20 * 60 * dt.timedelta(seconds=1)).isoformat(), "reason": "Chills"},
                format="json",
            ).status_code
            == 201
        )
        refused = staff.post(
            f"{url}/complete/",
            {"ended_at": (T0 + HOUR).isoformat(), "cells_administered": 1, "volume_ml": "1"},
            format="json",
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "infusion_interrupted")
        stopped = staff.post(
            f"{url}/stop-early/",
            {
                "ended_at": (T0 + HOUR).isoformat(),
                "reason": "Rigors",
                "cells_administered": 15_000_000,
                "volume_ml": "25",
            },
            format="json",
        )
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["status"] == "stopped_early"


@pytest.mark.parametrize("path", ["complete", "stop-early"])
def test_an_implausible_average_rate_is_a_400_until_confirmed_then_saved_flagged_with_a_major_deviation(
    staff, running, path
):
    body = {
        "ended_at": (T0 + 3 * MINUTE).isoformat(),
        "cells_administered": 60_000_000,
        "volume_ml": "100",
        **({"reason": "Line found free-flowing"} if path == "stop-early" else {}),
    }
    with frozen(T0 + 10 * MINUTE):
        refused = staff.post(f"/api/v1/infusions/{running.pk}/{path}/", body, format="json")
        assert (refused.status_code, refused.json()["code"]) == (400, "implausible_average_rate")
        assert "666.7 drops/min" in refused.json()["message"] and "confirm_implausible_rate" in refused.json()["fields"]
        assert Infusion.objects.get(pk=running.pk).status == "in_progress" and ProtocolDeviation.objects.count() == 0
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/{path}/", body | {"confirm_implausible_rate": True}, format="json"
        )
    assert response.status_code == 200, response.json()
    infusion = response.json()
    assert (
        infusion["average_drops_per_minute"],
        infusion["average_rate_out_of_range"],
        infusion["implausible_rate_confirmed"],
    ) == ("666.7", True, True)
    assert (infusion["average_rate_min"], infusion["average_rate_max"]) == ("20.00", "25.00")
    deviations = staff.get("/api/v1/deviations/?category=infusion_rate").json()["results"]
    assert [(d["severity"], d["source"], d["infusion"], d["drip_rate_reading"]) for d in deviations] == [
        ("major", "system", running.pk, None)
    ]


@pytest.mark.parametrize(
    ("minutes", "average", "flagged"), [(79, "25.3", True), (80, "25.0", False), (100, "20.0", False),
                                        (101, "19.8", True)],
)  # fmt: skip
def test_the_average_rate_is_in_the_infusion_for_staff_and_sponsors(staff, sponsor, running, minutes, average, flagged):
    with frozen(T0 + 2 * HOUR):
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/complete/",
            {
                "ended_at": (T0 + minutes * MINUTE).isoformat(),
                "cells_administered": 60_000_000,
                "volume_ml": "100",
            },
            format="json",
        )
    assert response.status_code == 200, response.json()
    for client in (staff, sponsor):
        body = client.get(f"/api/v1/infusions/{running.pk}/").json()
        assert (body["average_drops_per_minute"], body["average_rate_out_of_range"]) == (average, flagged)
        assert body["implausible_rate_confirmed"] is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"confirm_implausible_rate": "perhaps"}, "invalid"),
        ({"volume_ml": "0"}, "volume_not_given"),
        ({"ended_at": T0.isoformat()}, "no_running_time"),
    ],
)
def test_a_completion_without_a_plausible_average_answers_with_its_code(staff, running, body, code):
    with frozen(T0 + 2 * HOUR):
        response = staff.post(
            f"/api/v1/infusions/{running.pk}/complete/",
            {
                "ended_at": (T0 + 90 * MINUTE).isoformat(),
                "cells_administered": 60_000_000,
                "volume_ml": "100",
                **body,
            },
            format="json",
        )
    assert (response.status_code, response.json()["code"]) == (400, code), response.json()
    assert Infusion.objects.get(pk=running.pk).status == "in_progress"


def test_the_hold_endpoint_says_until_when_and_why(staff, cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    with frozen(T0 + 3 * DAY):
        body = staff.get(f"/api/v1/infusions/hold/?participant={participants[1].pk}").json()
    assert (body["on_hold"], body["code"]) == (True, "sentinel_hold")
    assert "2026-12-02 09:00 (Asia/Shanghai)" in body["message"]
    assert body["until"] == "2026-12-02T09:00:00+08:00"
    with frozen(T0 + 8 * DAY):
        assert staff.get(f"/api/v1/infusions/hold/?participant={participants[1].pk}").json()["on_hold"] is False
    assert staff.get("/api/v1/infusions/hold/?participant=abc").status_code == 400


def test_sponsors_read_infusions_by_study_id_without_vitals_or_nurse_and_cannot_write(sponsor, cohort_of_three):
    _, participants = cohort_of_three
    infusion = infuse(participants[0], T0)
    body = sponsor.get("/api/v1/infusions/").json()["results"][0]
    assert body["study_id"] == "9137-001" and body["participant"] == participants[0].pk
    assert not ({"vitals", "interruptions", "administered_by", "premedication"} | IDENTIFIERS) & set(body)
    for url, payload in (
        ("/api/v1/infusions/", _start_body(participants[1])),
        (f"/api/v1/infusions/{infusion.pk}/readings/", {"observed_at": T0.isoformat(), "drops_per_minute": 22}),
        ("/api/v1/deviations/", {}),
    ):
        response = sponsor.post(url, payload, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied"), url
    visit = FollowUpVisit.objects.first()
    assert sponsor.post(f"/api/v1/visits/{visit.pk}/miss/", {"reason": "x"}, format="json").status_code == 403
    assert sponsor.get("/api/v1/visits/").status_code == 200
    assert sponsor.get("/api/v1/deviations/").status_code == 200


def test_no_token_is_a_401(cohort_of_three):
    assert _client().get("/api/v1/infusions/").status_code == 401


def test_staff_record_close_and_filter_deviations(staff, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0):
        created = staff.post(
            "/api/v1/deviations/",
            {
                "participant": participants[0].pk,
                "category": "procedure",
                "severity": "minor",
                "description": "Pre-infusion ECG not done",
                "occurred_on": "2026-11-25",
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        url = f"/api/v1/deviations/{created.json()['id']}/"
        assert staff.patch(url, {"close": True}, format="json").json()["code"] == "invalid"  # no reason
        refused = staff.patch(url, {"reason": "Closing", "close": True}, format="json")
        assert (refused.status_code, refused.json()["code"]) == (400, "corrective_action_required")
        closed = staff.patch(url, {"reason": "Closing", "corrective_action": "Checklist", "close": True}, format="json")
        assert closed.json()["status"] == "closed"
        again = staff.patch(url, {"reason": "Oops", "severity": "major"}, format="json")
        assert (again.status_code, again.json()["code"]) == (409, "deviation_closed")
        assert staff.put(url, {}, format="json").status_code == 405
    assert len(staff.get("/api/v1/deviations/?status=closed").json()["results"]) == 1
    assert staff.get("/api/v1/deviations/?status=open").json()["results"] == []
    assert staff.get("/api/v1/deviations/?severity=fatal").status_code == 400


@pytest.mark.parametrize("infused", [1, 3])
def test_the_list_endpoints_take_a_constant_number_of_queries(
    django_assert_max_num_queries, staff, sponsor, cohort_of_three, infused
):
    _, participants = cohort_of_three
    infusions = infuse_cohort(participants[:infused])
    with frozen(SCHEDULE[infused - 1] + 2 * HOUR):
        for infusion in infusions:
            from cohorts import services

            services.drip_rate_record(
                infusion=infusion,
                observed_at=infusion.started_at + 10 * 60 * dt.timedelta(seconds=1),
                drops_per_minute="26",
                by=nurse(),
            )
    for client in (staff, sponsor):
        with django_assert_max_num_queries(12):  # +2: the reader's site and trial assignments (trial.access)
            response = client.get("/api/v1/infusions/")
        assert len(response.json()["results"]) == infused
        # Each list asks once whether the reader is a sponsor (free text withheld, staff pseudonymised), and twice
        # for the reader's site and trial assignments (trial.access).
        with django_assert_max_num_queries(9):
            assert len(client.get("/api/v1/visits/").json()["results"]) == 7 * infused
        with django_assert_max_num_queries(9):
            assert len(client.get("/api/v1/deviations/").json()["results"]) == infused
