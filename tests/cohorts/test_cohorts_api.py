"""The cohorts REST API: screening, consent, cohorts and race-free enrollment over HTTP."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from cohorts import services
from cohorts.models import Cohort, ConsentRecord, Enrollment, JudgmentConfirmation, Participant, ScreeningRecord
from cohorts.selectors import site_today
from core.roles import SPONSOR
from tests.factories import (
    ELIGIBLE_SCREENING,
    DoseLevelFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
    consent_document,
    eligible_participant,
    staff_users,
    token_for,
)

pytestmark = pytest.mark.django_db

IDENTIFIERS = {"initials", "date_of_birth", "screening_number"}
ERROR_KEYS = {"code", "message", "fields"}


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def coordinator(db):
    return staff_users()[0]


@pytest.fixture
def investigator(db):
    return staff_users()[1]


@pytest.fixture
def open_cohort(nct_trial, investigator):
    return services.cohort_open_first(trial=nct_trial, by=investigator)


def _register(trial, number: str, by) -> Participant:
    return services.participant_register(
        trial=trial,
        site=trial.sites.order_by("pk").first(),
        screening_number=number,
        date_of_birth=dt.date(1960, 3, 15),
        sex="F",
        initials="WL",
        by=by,
    )


def _jsonable(values: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal | dt.date) else v) for k, v in values.items()}


def _enroll(client, cohort, participant_id):
    return client.post(f"/api/v1/cohorts/{cohort.pk}/enrollments/", {"participant": participant_id}, format="json")


# --- enrollment -------------------------------------------------------------------------------------------------


def test_enrollment_answers_201_and_the_fourth_into_a_cohort_of_three_answers_409_cohort_full(
    open_cohort, nct_trial, coordinator
):
    client = _client(coordinator)
    answers = [_enroll(client, open_cohort, eligible_participant(nct_trial, number=f"S00{n}").pk) for n in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    first = answers[0].json()
    assert set(first) == {"id", "cohort", "participant", "study_id", "slot", "is_sentinel", "enrolled_at"}
    assert (first["slot"], first["is_sentinel"], first["study_id"]) == (1, True, "9137-001")
    assert [(a.json()["slot"], a.json()["is_sentinel"]) for a in answers[1:]] == [(2, False), (3, False)]

    fourth = eligible_participant(nct_trial, number="S009")
    refused = _enroll(client, open_cohort, fourth.pk)

    assert refused.status_code == 409
    assert refused.json()["code"] == "cohort_full"
    assert set(refused.json()) == ERROR_KEYS
    assert Enrollment.objects.count() == 3
    fourth.refresh_from_db()
    assert (fourth.study_id, fourth.status) == (None, Participant.Status.ELIGIBLE)
    listed = client.get(f"/api/v1/cohorts/{open_cohort.pk}/enrollments/").json()
    assert [e["slot"] for e in listed["results"]] == [1, 2, 3]
    cohort = client.get(f"/api/v1/cohorts/{open_cohort.pk}/").json()
    assert (cohort["state"], cohort["capacity"], cohort["enrolled"]) == ("full", 3, 3)


def _paused(cohort):
    Cohort.objects.filter(pk=cohort.pk).update(state=Cohort.State.PAUSED, state_before_pause=cohort.state)


def _observing(cohort):
    Cohort.objects.filter(pk=cohort.pk).update(state=Cohort.State.OBSERVING)


def _enrolled_already(trial, cohort, by):
    participant = eligible_participant(trial, number="X6")
    services.enroll_participant(participant=participant, cohort=cohort, by=by)
    return participant


@pytest.mark.parametrize(
    ("make_participant", "change_cohort", "code"),
    [
        (lambda t, c, by: eligible_participant(t, number="X1"), _observing, "cohort_not_open"),
        (lambda t, c, by: eligible_participant(t, number="X2"), _paused, "cohort_paused"),
        (lambda t, c, by: eligible_participant(t, number="X3", weight_kg=Decimal("39.9")), None, "not_eligible"),
        (lambda t, c, by: eligible_participant(t, number="X4", judge=False), None, "judgment_pending"),
        (lambda t, c, by: eligible_participant(t, number="X5", consent=False), None, "no_consent"),
        (_enrolled_already, None, "already_enrolled"),
    ],
)
def test_each_enrollment_refusal_answers_409_with_its_code_and_writes_nothing(
    open_cohort, nct_trial, coordinator, make_participant, change_cohort, code
):
    participant = make_participant(nct_trial, open_cohort, coordinator)
    if change_cohort:
        change_cohort(open_cohort)
    enrollments_before = Enrollment.objects.count()
    participant.refresh_from_db()
    study_id_before = participant.study_id

    response = _enroll(_client(coordinator), open_cohort, participant.pk)

    assert response.status_code == 409
    assert response.json()["code"] == code
    assert set(response.json()) == ERROR_KEYS and response.json()["message"]
    assert Enrollment.objects.count() == enrollments_before
    participant.refresh_from_db()
    assert participant.study_id == study_id_before


# --- malformed input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"participant": "abc"}, "participant"),
        ({}, "participant"),
        ({"participant": 10**30}, "participant"),
        ({"participant": 1.5}, "participant"),
        ({"participant": True}, "participant"),
        ({"participant": 999_999}, "participant"),
    ],
)
def test_a_malformed_enrollment_answers_400_with_field_messages_and_enrolls_nobody(
    open_cohort, coordinator, body, field
):
    response = _client(coordinator).post(f"/api/v1/cohorts/{open_cohort.pk}/enrollments/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"][field]
    assert Enrollment.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"screening_number": "S\x00001"}, "screening_number"),
        ({"screening_number": None}, "screening_number"),
        ({"screening_number": "S" * 33}, "screening_number"),
        ({"site": "abc"}, "site"),
        ({"site": 10**30}, "site"),
        ({"date_of_birth": "15/03/1960"}, "date_of_birth"),
        ({"sex": "X"}, "sex"),
        ({"trial": "NCT00000000"}, "trial"),
    ],
)
def test_a_malformed_screening_registration_answers_400_and_saves_nothing(nct_trial, coordinator, change, field):
    body = {
        "trial": "NCT06949137",
        "site": nct_trial.sites.first().pk,
        "screening_number": "S001",
        "date_of_birth": "1960-03-15",
        "sex": "F",
        "initials": "WL",
        **change,
    }
    response = _client(coordinator).post("/api/v1/participants/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"][field]
    assert Participant.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"weight_kg": 10**30}, "weight_kg"),
        ({"t_score_total_hip": "-12345.6"}, "t_score_total_hip"),
        ({"measurable_lumbar_vertebrae": 10**30}, "measurable_lumbar_vertebrae"),
        ({"screening_date": None}, "screening_date"),
        ({"natural_menopause": "perhaps"}, "natural_menopause"),
        ({"fractures": [{"date": "2025-01-01", "site": "wrist\x00"}]}, "fractures"),
        ({"fractures": "none"}, "fractures"),
    ],
)
def test_malformed_screening_data_answers_400_with_field_messages_and_saves_nothing(
    nct_trial, coordinator, change, field
):
    participant = _register(nct_trial, "S001", coordinator)
    body = {**_jsonable(ELIGIBLE_SCREENING), "screening_date": str(site_today(participant)), "fractures": [], **change}
    response = _client(coordinator).put(f"/api/v1/participants/{participant.pk}/screening/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"][field]
    assert ScreeningRecord.objects.count() == 0


def test_changing_screening_data_needs_a_reason(nct_trial, coordinator):
    participant = _register(nct_trial, "S001", coordinator)
    client = _client(coordinator)
    url = f"/api/v1/participants/{participant.pk}/screening/"
    body = {**_jsonable(ELIGIBLE_SCREENING), "screening_date": str(site_today(participant)), "fractures": []}
    assert client.put(url, body, format="json").status_code == 201

    without_reason = client.patch(url, {"weight_kg": "56.0"}, format="json")
    assert without_reason.status_code == 400
    assert without_reason.json()["code"] == "reason_required"
    assert ScreeningRecord.objects.get().weight_kg == Decimal("55.0")

    with_reason = client.patch(url, {"weight_kg": "56.0", "reason": "Scale recalibrated"}, format="json")
    assert with_reason.status_code == 200
    assert with_reason.json()["weight_kg"] == "56.0"
    assert client.get(url).json()["weight_kg"] == "56.0"


# --- the whole path over HTTP -----------------------------------------------------------------------------------


def test_a_participant_is_screened_judged_consented_and_enrolled_entirely_over_the_api(
    open_cohort, nct_trial, coordinator, investigator
):
    staff, judge = _client(coordinator), _client(investigator)
    created = staff.post(
        "/api/v1/participants/",
        {
            "trial": "NCT06949137",
            "site": nct_trial.sites.first().pk,
            "screening_number": "S001",
            "date_of_birth": "1960-03-15",
            "sex": "F",
            "initials": "WL",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    pid = created.json()["id"]
    assert (created.json()["status"], created.json()["study_id"]) == ("screening", None)

    today = site_today(Participant.objects.get(pk=pid))
    screening = staff.put(
        f"/api/v1/participants/{pid}/screening/",
        {
            **_jsonable(ELIGIBLE_SCREENING),
            "screening_date": str(today),
            "fractures": [],
        },
        format="json",
    )
    assert screening.status_code == 201, screening.json()
    pending = staff.get(f"/api/v1/participants/{pid}/eligibility/").json()
    assert pending["eligible"] is False and pending["pending_judgment"] and pending["consent_missing"]

    for code in pending["pending_judgment"]:
        answer = judge.post(f"/api/v1/participants/{pid}/judgments/", {"code": code, "satisfied": True}, format="json")
        assert answer.status_code == 201, answer.json()
    consent = staff.post(
        "/api/v1/consents/",
        {
            "participant": pid,
            "document": consent_document(nct_trial).pk,
            "signed_at": (timezone.now() - dt.timedelta(minutes=5)).isoformat(),
            "witness_name": "",
        },
        format="json",
    )
    assert consent.status_code == 201, consent.json()
    assert staff.get(f"/api/v1/consents/?participant={pid}").json()["count"] == 1

    eligibility = staff.get(f"/api/v1/participants/{pid}/eligibility/").json()
    assert eligibility["eligible"] is True
    assert {c["verdict"] for c in eligibility["criteria"]} == {"met"}
    enrolled = _enroll(staff, open_cohort, pid)
    assert enrolled.status_code == 201
    participant = staff.get(f"/api/v1/participants/{pid}/").json()
    assert (participant["status"], participant["study_id"], participant["cohort"]) == (
        "enrolled",
        "9137-001",
        open_cohort.pk,
    )


def test_the_eligibility_endpoint_gives_the_reason_a_bmi_is_out_of_range(nct_trial, coordinator):
    participant = eligible_participant(nct_trial, number="S001", weight_kg=Decimal("90.0"))
    response = _client(coordinator).get(f"/api/v1/participants/{participant.pk}/eligibility/")
    assert response.status_code == 200
    body = response.json()
    assert body["eligible"] is False
    assert "I3" in body["unmet"]
    i3 = next(c for c in body["criteria"] if c["code"] == "I3")
    assert (i3["kind"], i3["verdict"]) == ("inclusion", "not_met")
    assert "BMI 36.1 kg/m² is outside 18–30" in i3["reason"]


def test_a_withdrawal_needs_a_reason_and_is_recorded(nct_trial, coordinator):
    participant = _register(nct_trial, "S001", coordinator)
    client = _client(coordinator)
    url = f"/api/v1/participants/{participant.pk}/withdraw/"
    today = str(site_today(participant))
    assert client.post(url, {"on": today}, format="json").json()["fields"]["reason"]
    response = client.post(url, {"on": today, "reason": "Moved away"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["withdrawn_on"]) == ("withdrawn", today)


def test_participants_filter_by_trial_cohort_and_status_and_a_bad_filter_answers_400(
    open_cohort, nct_trial, coordinator
):
    _register(nct_trial, "S001", coordinator)
    withdrawn = _register(nct_trial, "S002", coordinator)
    services.participant_withdraw(participant=withdrawn, on=site_today(withdrawn), reason="Moved", by=coordinator)
    client = _client(coordinator)

    def ids(query):
        return [p["id"] for p in client.get(f"/api/v1/participants/?{query}").json()["results"]]

    assert ids("status=withdrawn") == [withdrawn.pk]
    assert len(ids("trial=NCT06949137")) == 2
    assert ids("trial=NCT00000000") == []
    assert ids(f"cohort={open_cohort.pk}") == []
    for bad in ("cohort=abc", f"cohort={10**30}", "status=asleep", "trial=N%00CT"):
        response = client.get(f"/api/v1/participants/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["fields"]


# --- roles ------------------------------------------------------------------------------------------------------


def test_a_sponsor_reads_participants_by_study_id_without_identifiers_and_cannot_write(
    open_cohort, nct_trial, coordinator
):
    enrolled = eligible_participant(nct_trial, number="S001")
    services.enroll_participant(participant=enrolled, cohort=open_cohort, by=coordinator)
    sponsor = _client(UserFactory(role=SPONSOR))

    listed = sponsor.get("/api/v1/participants/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["study_id"] == "9137-001" and row["cohort"] == open_cohort.pk
    assert not IDENTIFIERS & set(row)
    one = sponsor.get(f"/api/v1/participants/{enrolled.pk}/").json()
    assert one["study_id"] == "9137-001" and not IDENTIFIERS & set(one)
    assert "WL" not in listed.content.decode() and "1960-03-15" not in listed.content.decode()
    staff_view = _client(coordinator).get(f"/api/v1/participants/{enrolled.pk}/").json()
    assert (staff_view["initials"], staff_view["date_of_birth"], staff_view["screening_number"]) == (
        "WL",
        "1960-03-15",
        "S001",
    )

    assert sponsor.get(f"/api/v1/cohorts/{open_cohort.pk}/enrollments/").status_code == 200
    assert sponsor.get(f"/api/v1/participants/{enrolled.pk}/eligibility/").status_code == 403
    assert sponsor.get("/api/v1/consents/").status_code == 403
    refused = [
        sponsor.post(
            "/api/v1/participants/",
            {"trial": "NCT06949137", "site": 1, "screening_number": "S9", "date_of_birth": "1960-01-01", "sex": "F"},
            format="json",
        ),
        _enroll(sponsor, open_cohort, enrolled.pk),
        sponsor.post(
            f"/api/v1/participants/{enrolled.pk}/withdraw/", {"on": "2025-01-01", "reason": "x"}, format="json"
        ),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert {r.json()["code"] for r in refused} == {"permission_denied"}
    assert Participant.objects.count() == 1


@pytest.mark.parametrize(
    "url", ["/api/v1/participants/", "/api/v1/cohorts/", "/api/v1/consents/", "/api/v1/consent-documents/"]
)
def test_without_a_token_every_endpoint_answers_401(nct_trial, url):
    response = _client().get(url)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_site_staff_cannot_confirm_judgments_but_an_investigator_can(nct_trial, coordinator, investigator):
    participant = _register(nct_trial, "S001", coordinator)
    url = f"/api/v1/participants/{participant.pk}/judgments/"
    body = {"code": "E3", "satisfied": True, "note": "No history of malignancy"}

    refused = _client(coordinator).post(url, body, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert JudgmentConfirmation.objects.count() == 0

    confirmed = _client(investigator).post(url, body, format="json")
    assert confirmed.status_code == 201
    assert (confirmed.json()["code"], confirmed.json()["satisfied"], confirmed.json()["confirmed_by"]) == (
        "E3",
        True,
        "investigator",
    )
    assert JudgmentConfirmation.objects.get().confirmed_by == investigator


def test_a_judgment_on_a_criterion_decided_by_data_is_refused(nct_trial, coordinator, investigator):
    participant = _register(nct_trial, "S001", coordinator)
    url = f"/api/v1/participants/{participant.pk}/judgments/"
    assert _client(investigator).post(url, {"code": "I3", "satisfied": True}, format="json").status_code == 409
    missing = _client(investigator).post(url, {"code": "E3"}, format="json")
    assert missing.status_code == 400 and missing.json()["fields"]["satisfied"]


def test_only_an_investigator_opens_the_first_cohort_and_only_once(nct_trial, coordinator, investigator):
    url = "/api/v1/trials/NCT06949137/open-first-cohort/"
    assert _client(coordinator).post(url).status_code == 403
    opened = _client(investigator).post(url)
    assert opened.status_code == 201
    body = opened.json()
    assert (body["sequence"], body["state"], body["capacity"], body["enrolled"]) == (1, "open", 3, 0)
    assert (body["dose_level"]["level"], body["dose_level"]["label"]) == (1, "Low")
    assert body["next_step"] == "Enroll: 3 of 3 places left"
    again = _client(investigator).post(url)
    assert (again.status_code, again.json()["code"]) == (409, "escalation_decision_required")
    assert _client(investigator).post("/api/v1/trials/NCT00000000/open-first-cohort/").status_code == 404
    assert Cohort.objects.count() == 1


def test_a_consent_signed_in_the_future_is_refused(nct_trial, coordinator):
    participant = _register(nct_trial, "S001", coordinator)
    response = _client(coordinator).post(
        "/api/v1/consents/",
        {
            "participant": participant.pk,
            "document": consent_document(nct_trial).pk,
            "signed_at": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "signed_in_future"
    assert ConsentRecord.objects.count() == 0


# --- query counts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("participants", [1, 6])
def test_participant_list_takes_a_constant_number_of_queries(
    django_assert_max_num_queries, open_cohort, nct_trial, coordinator, participants
):
    enrolled = min(participants, 3)
    for n in range(enrolled):
        services.enroll_participant(
            participant=eligible_participant(nct_trial, number=f"E{n}"), cohort=open_cohort, by=coordinator
        )
    for n in range(participants - enrolled):
        _register(nct_trial, f"R{n}", coordinator)
    for user in (coordinator, UserFactory(role=SPONSOR)):
        client = _client(user)
        with django_assert_max_num_queries(10):  # +2: the reader's site and trial assignments (trial.access)
            response = client.get("/api/v1/participants/?trial=NCT06949137")
        assert response.status_code == 200
        assert response.json()["count"] == participants
        with django_assert_max_num_queries(10):  # +2: the reader's site and trial assignments (trial.access)
            response = client.get(f"/api/v1/cohorts/{open_cohort.pk}/enrollments/")
        assert response.json()["count"] == enrolled


@pytest.mark.parametrize("cohorts", [1, 6])
def test_cohort_list_takes_a_constant_number_of_queries(django_assert_max_num_queries, investigator, cohorts):
    for _ in range(cohorts):
        trial = TrialFactory()
        SiteFactory(trial=trial)
        DoseLevelFactory(trial=trial, level=1)
        services.cohort_open_first(trial=trial, by=investigator)
    client = _client(UserFactory(role=SPONSOR))
    with django_assert_max_num_queries(9):  # +2: the reader's site and trial assignments (trial.access)
        response = client.get("/api/v1/cohorts/")
    assert response.status_code == 200
    assert response.json()["count"] == cohorts
    assert {c["next_step"] for c in response.json()["results"]} == {"Enroll: 3 of 3 places left"}
