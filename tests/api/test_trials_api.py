import pytest
from rest_framework.test import APIClient

from core.roles import SPONSOR
from tests.factories import DoseLevelFactory, TrialFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_a_sponsor_token_reads_the_trial_with_its_dose_levels_criteria_and_schedule(nct_trial):
    response = _client(UserFactory(role=SPONSOR)).get("/api/v1/trials/NCT06949137/")
    assert response.status_code == 200
    body = response.json()
    assert body["planned_enrollment"] == 18
    assert [(d["label"], d["cells"], d["cells_display"]) for d in body["dose_levels"]] == [
        ("Low", 60_000_000, "6.0×10⁷"),
        ("Medium", 120_000_000, "1.2×10⁸"),
        ("High", 240_000_000, "2.4×10⁸"),
    ]
    assert (body["infusion_rate_min"], body["infusion_rate_max"]) == ("20.00", "25.00")
    assert [c["code"] for c in body["criteria"]][:4] == ["I1", "I2", "I3", "I4"]
    assert body["visit_schedule"][0]["day_offset"] >= 0


def test_without_a_token_the_api_answers_401_with_a_json_error(nct_trial):
    response = _client().get("/api/v1/trials/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert set(response.json()) == {"code", "message", "fields"}


def test_a_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/trials/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_user_without_a_role_gets_403(nct_trial):
    response = _client(UserFactory()).get("/api/v1/trials/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_trials_cannot_be_written_through_the_api(nct_trial):
    response = _client(UserFactory(is_superuser=True)).post("/api/v1/trials/", {"title": "x"}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unknown_trial_answers_404_json(nct_trial):
    response = _client(UserFactory(role=SPONSOR)).get("/api/v1/trials/NCT00000000/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("trials", [1, 6])
def test_trial_list_takes_a_constant_number_of_queries(django_assert_max_num_queries, trials):
    for _ in range(trials):
        DoseLevelFactory(trial=TrialFactory(), level=1)
    client = _client(UserFactory(role=SPONSOR))
    with django_assert_max_num_queries(12):  # +2: the reader's site and trial assignments (trial.access)
        response = client.get("/api/v1/trials/")
    assert response.status_code == 200
    assert response.json()["count"] == trials


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/trials/" in schema.content
    assert client.get("/api/docs/").status_code == 200
