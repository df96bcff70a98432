"""List filters are django-filter FilterSets: each is a query parameter of the schema, and a bad value is a 400.

The value is never silently ignored (a filter that drops a bad value would answer the whole list): an id out
of 1…2⁶³−1 or not a number, a NUL byte, an unknown choice, a date that is not one, a yes/no that is neither,
a grade outside 1–5 each answer 400 ``invalid`` naming the parameter. Query counts with filters are in
tests/api/test_query_counts.py.
"""

import pytest
from django.contrib.auth import get_user_model
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.dashboard.seed import VIEW, frozen, seed_trial

pytestmark = pytest.mark.django_db

FILTERS = {
    "/api/v1/participants/": {"trial", "cohort", "status"},
    "/api/v1/infusions/": {"participant", "cohort", "status"},
    "/api/v1/visits/": {"participant", "cohort", "status", "target_from", "target_to"},
    "/api/v1/deviations/": {"participant", "cohort", "category", "severity", "status", "source"},
    "/api/v1/lost-to-follow-up/": {"participant", "state"},
    "/api/v1/consents/": {"participant"},
    "/api/v1/adverse-events/": {"trial", "cohort", "participant", "grade", "worst_grade", "serious", "dlt_status",
                                "onset_after", "onset_before"},
    "/api/v1/reporting-clocks/": {"overdue", "done", "kind", "adverse_event", "trial"},
    "/api/v1/reviews/": {"trial", "state"},
}  # fmt: skip

BAD = [
    ("/api/v1/participants/", "cohort", "abc"),
    ("/api/v1/participants/", "cohort", "0"),
    ("/api/v1/participants/", "cohort", str(2**63)),
    ("/api/v1/participants/", "status", "asleep"),
    ("/api/v1/participants/", "trial", "NCT\x00"),
    ("/api/v1/participants/", "trial", "N" * 33),
    ("/api/v1/infusions/", "participant", "-1"),
    ("/api/v1/infusions/", "status", "boiling"),
    ("/api/v1/visits/", "target_from", "yesterday"),
    ("/api/v1/visits/", "status", "x"),
    ("/api/v1/deviations/", "severity", "apocalyptic"),
    ("/api/v1/deviations/", "participant", "1.5"),
    ("/api/v1/lost-to-follow-up/", "state", "gone"),
    ("/api/v1/consents/", "participant", "one"),
    ("/api/v1/adverse-events/", "grade", "6"),
    ("/api/v1/adverse-events/", "worst_grade", "0"),
    ("/api/v1/adverse-events/", "serious", "maybe"),
    ("/api/v1/adverse-events/", "onset_before", "2026-13-01"),
    ("/api/v1/adverse-events/", "dlt_status", "perhaps"),
    ("/api/v1/reporting-clocks/", "overdue", "sometimes"),
    ("/api/v1/reporting-clocks/", "done", "2"),
    ("/api/v1/reporting-clocks/", "kind", "carrier pigeon"),
    ("/api/v1/reviews/", "trial", "NCT 1"),
    ("/api/v1/reviews/", "state", "pondering"),
]


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.org", "x" * 20))
    return client


def test_every_filter_is_a_query_parameter_of_its_list_in_the_schema(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, names in FILTERS.items():
        parameters = {p["name"] for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert parameters - {"limit", "offset"} == names, path


@pytest.mark.parametrize(("path", "name", "value"), BAD, ids=[f"{p.split('/')[3]}-{n}={v[:8]!r}" for p, n, v in BAD])
def test_a_bad_filter_value_is_a_400_naming_the_parameter(api, path, name, value):
    response = api.get(path, {name: value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and name in body["fields"], body


def test_an_onset_window_ending_before_it_starts_is_a_400(api):
    response = api.get("/api/v1/adverse-events/", {"onset_after": "2026-02-01", "onset_before": "2026-01-01"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"onset_before": ["Must not be before onset_after."]}


def test_filters_narrow_the_lists_and_an_empty_value_is_no_filter(api, nct_trial):
    seed_trial(nct_trial)
    with frozen(VIEW):
        every = api.get("/api/v1/adverse-events/", {"limit": 1000}).json()
        serious = api.get("/api/v1/adverse-events/", {"limit": 1000, "serious": "true"}).json()
        not_serious = api.get("/api/v1/adverse-events/", {"limit": 1000, "serious": "false"}).json()
        unset = api.get("/api/v1/adverse-events/", {"limit": 1000, "serious": ""}).json()
        assert serious["count"] + not_serious["count"] == every["count"] == unset["count"]
        assert {e["serious"] for e in serious["results"]} <= {True}
        enrolled = api.get("/api/v1/participants/", {"status": "screening", "trial": nct_trial.registry_id}).json()
        assert {p["status"] for p in enrolled["results"]} <= {"screening"}
        assert api.get("/api/v1/participants/", {"trial": "NCT00000000"}).json()["count"] == 0
        open_clocks = api.get("/api/v1/reporting-clocks/", {"done": "false", "limit": 1000}).json()
        assert {c["done_at"] for c in open_clocks["results"]} <= {None}


def test_a_filter_does_not_narrow_a_detail(api, nct_trial):
    seed_trial(nct_trial)
    with frozen(VIEW):
        event = api.get("/api/v1/adverse-events/").json()["results"][0]
        response = api.get(f"/api/v1/adverse-events/{event['id']}/", {"grade": "6"})
    assert response.status_code == 200
