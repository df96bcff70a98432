"""Hostile input keeps the error contract on every JSON write endpoint (issue 12, item 7).

The endpoints are not listed by hand: they come from the OpenAPI schema (every operation under
``/api/v1/`` with a request body), and the bad-id routes from the URL conf. Each test drives all of
them against a seeded trial in which every path parameter names a record that exists, so the request
gets past the lookup to the parser and the serializer; the caller is a superuser, so no permission
refuses first. Each answer must be ``{"code", "message", "fields"}`` JSON with the expected status.
"""

import json
import re
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from api.handlers import server_error
from api.parsers import nesting_exceeds
from api.views import TrialViewSet
from cohorts import services as cohort_services
from cohorts.models import Cohort, FollowUpVisit, Infusion, LostToFollowUp, Participant, ProtocolDeviation
from safety.models import AdverseEvent, ReportingClock, SafetyReview
from tests.dashboard.seed import seed_trial

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch")
NOT_TEXT_FORMATS = {"date", "date-time", "decimal", "uri", "binary"}
# The first path segment after /api/v1/ names the record a path parameter refers to.
RECORDS = {
    "participants": Participant,
    "cohorts": Cohort,
    "infusions": Infusion,
    "visits": FollowUpVisit,
    "deviations": ProtocolDeviation,
    "adverse-events": AdverseEvent,
    "reporting-clocks": ReportingClock,
    "reviews": SafetyReview,
    "lost-to-follow-up": LostToFollowUp,
}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def world(nct_trial):
    """The seeded trial (dashboard seed) plus a deviation: one record behind every path parameter."""
    seeded = seed_trial(nct_trial)
    participant = Participant.objects.filter(study_id__isnull=False).order_by("pk").first()
    coordinator = get_user_model().objects.get(username="coordinator")
    cohort_services.deviation_record(
        participant=participant,
        category=ProtocolDeviation.Category.choices[0][0],
        severity=ProtocolDeviation.Severity.choices[0][0],
        description="Seeded for the hostile-input tests",
        occurred_on=date(2026, 1, 1) if participant.dlt_window_start is None else participant.dlt_window_start,
        by=coordinator,
    )
    visit = FollowUpVisit.objects.filter(participant=participant).order_by("pk").first()
    LostToFollowUp.objects.create(  # the sweep's flag, as it leaves one (its confirm/dismiss actions take a body)
        participant=participant, last_missed_visit=visit, missed_visits=2, flagged_at=timezone.now()
    )
    return seeded


@pytest.fixture
def api(db):
    """A superuser's client: no permission refuses before the parser and the serializer run."""
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root", "root@example.org", "x" * 20))
    return client


def _fill(template: str, trial) -> str:
    """A path template with each parameter replaced by a record that exists."""
    resource = template.removeprefix("/api/v1/").split("/")[0]

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "registry_id":
            return trial.registry_id
        if name == "domain":
            return "AE"
        return str(RECORDS[resource].objects.order_by("pk").values_list("pk", flat=True).first())

    return re.sub(r"\{(\w+)\}", value, template)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _write_operations(schema: dict) -> list[tuple[str, str, dict]]:
    """(path template, method, request body schema) of every JSON write operation the schema documents."""
    found = []
    for template, operations in schema["paths"].items():
        for method in WRITE_METHODS:
            body = operations.get(method, {}).get("requestBody", {}).get("content", {}).get("application/json")
            if template.startswith("/api/v1/") and body:
                found.append((template, method, _resolve(schema, body["schema"])))
    return found


def _text_fields(schema: dict, body: dict) -> list[tuple[str, object]]:
    """(field, a body that puts a JSON number where that text is expected) for every text field, nested ones too."""
    out = []
    for name, prop in body.get("properties", {}).items():
        prop = _resolve(schema, prop)
        if prop.get("readOnly"):
            continue
        if prop.get("type") == "string" and "enum" not in prop and prop.get("format") not in NOT_TEXT_FORMATS:
            out.append((name, None))
        items = _resolve(schema, prop.get("items", {}))
        if prop.get("type") == "array" and items.get("type") == "object":
            out += [(name, {name: [{child: -5}]}) for child, _ in _text_fields(schema, items)]
    return out


def _send(api: APIClient, method: str, path: str, body: bytes):
    return getattr(api, method)(path, data=body, content_type="application/json")


def _contract(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    data = json.loads(response.content)
    assert set(data) == {"code", "message", "fields"} and data["message"], data
    return data


def test_the_schema_lists_the_write_endpoints_the_tests_drive(schema):
    operations = _write_operations(schema)
    assert len(operations) >= 25, [(t, m) for t, m, _ in operations]
    assert ("/api/v1/participants/", "post") in {(t, m) for t, m, _ in operations}


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 64 + "]" * 64, False),
        ("[" * 65 + "]" * 65, True),
        ('{"a": "' + "[" * 500 + '"}', False),  # brackets inside a string do not count
        ('{"a": "\\"' + "{" * 500 + '"}', False),  # nor after an escaped quote
        ('{"a": [' * 33 + "1" + "]}" * 33, True),  # 66 levels
        ('{"a": [' * 32 + "1" + "]}" * 32, False),  # 64 levels
    ],
)
def test_nesting_is_counted_on_the_raw_text_with_both_sides_of_the_limit(text, too_deep):
    assert nesting_exceeds(text, 64) is too_deep


def test_a_3000_level_nested_body_is_refused_as_json_on_every_write_endpoint(api, schema, world):
    wrong = {}
    for deep in ("[" * 3000 + "]" * 3000, '{"reason": ' + "{" * 3000 + "}" * 3000 + "}"):
        for template, method, _ in _write_operations(schema):
            response = _send(api, method, _fill(template, world.trial), deep.encode())
            data = _contract(response)
            if (response.status_code, data["code"]) != (400, "nesting_too_deep"):
                wrong[f"{method.upper()} {template}"] = (response.status_code, data["code"])
    assert wrong == {}


def test_a_10_mb_body_is_refused_with_413_json_on_every_write_endpoint_before_it_is_read(api, schema, world):
    body = json.dumps({"reason": "x" * (10 * 1024 * 1024)}).encode()
    wrong = {}
    for template, method, _ in _write_operations(schema):
        response = _send(api, method, _fill(template, world.trial), body)
        data = _contract(response)
        if (response.status_code, data["code"]) != (413, "payload_too_large"):
            wrong[f"{method.upper()} {template}"] = (response.status_code, data["code"])
    assert wrong == {}


def test_a_body_just_under_the_limit_is_read(api, world, settings):
    body = json.dumps({"reason": "x" * (settings.API_MAX_BODY_BYTES - 20)}).encode()
    assert len(body) <= settings.API_MAX_BODY_BYTES
    participant = Participant.objects.order_by("pk").first()
    response = _send(api, "post", f"/api/v1/participants/{participant.pk}/withdraw/", body)
    data = _contract(response)
    assert response.status_code == 400 and data["code"] == "invalid" and "on" in data["fields"]


NOT_OBJECTS = ["[]", "5", '"text"', "null", "true", "NaN", '{"a": Infinity}', "{", '{"a": 1,}', "1" * 5000, "\ufeff{}"]


def test_a_body_that_is_not_a_json_object_is_a_400_on_every_write_endpoint(api, schema, world):
    wrong = {}
    for body in NOT_OBJECTS:  # one seeded world for all of them (seeding costs more than the requests)
        for template, method, _ in _write_operations(schema):
            response = _send(api, method, _fill(template, world.trial), body.encode())
            _contract(response)
            if response.status_code != 400:
                wrong[f"{method.upper()} {template} {body[:10]}"] = response.status_code
    assert wrong == {}


def test_every_text_field_refuses_a_json_number_or_boolean_and_names_the_field(api, schema, world):
    wrong, tried = {}, 0
    for number in ("-5", "1e308", "0", "true", "[]", "{}"):
        for template, method, body in _write_operations(schema):
            for field, nested in _text_fields(schema, body):
                payload = json.dumps(nested) if nested else f'{{"{field}": {number}}}'
                response = _send(api, method, _fill(template, world.trial), payload.encode())
                data = _contract(response)
                tried += 1
                if response.status_code != 400 or field not in data["fields"]:
                    wrong[f"{method.upper()} {template} {field}={number}"] = (response.status_code, data["fields"])
    assert tried >= 100
    assert wrong == {}


def test_a_screening_number_sent_as_a_number_is_refused_and_nothing_is_registered(api, world):
    before = Participant.objects.count()
    for number in ("-5", "1e308", "12345"):
        body = f'{{"trial": "NCT06949137", "site": {world.trial.sites.first().pk}, "screening_number": {number}, '
        body += '"date_of_birth": "1960-03-15", "sex": "F"}'
        response = _send(api, "post", "/api/v1/participants/", body.encode())
        data = _contract(response)
        assert response.status_code == 400 and data["code"] == "invalid"
        assert data["fields"] == {"screening_number": ["Must be text (a JSON string), not a number."]}
    assert Participant.objects.count() == before


def _api_routes(patterns=None, prefix=""):
    """Every route under api/v1/ with a path parameter (the router's format-suffix twins aside)."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and "<" in route and "format" not in route:
            yield route


BAD_IDS = ["abc", "9" * 30, "9223372036854775808", "-1", "0", "1.5", "%00", "1%00", "%20", "null", "1e5"]
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def _with_bad_id(route: str, trial, bad: str) -> str:
    """The route's first parameter set to ``bad``, any later one to a value that exists."""
    seen = []

    def value(match: re.Match) -> str:
        seen.append(match)
        if len(seen) == 1:
            return bad
        return trial.registry_id if (match.group(1) or match.group(2)) == "registry_id" else "AE"

    return "/" + _PARAMETER.sub(value, route.replace("^", "").replace("$", ""))


def test_bad_ids_in_every_api_url_answer_404_json(api, world):
    routes = sorted(set(_api_routes()))
    assert len(routes) >= 15, routes
    wrong = {}
    for route in routes:
        for bad in BAD_IDS:
            path = _with_bad_id(route, world.trial, bad)
            for method in ("GET", "POST"):
                response = api.generic(method, path, b"{}", content_type="application/json")
                data = _contract(response)
                if response.status_code not in (404, 405):  # 405: the route does not take the method
                    wrong[f"{method} {path}"] = (response.status_code, data["code"])
    assert wrong == {}


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here/", "/api/v1/participants/1/nothing/", "/api/v2/", "/api/", "/api/v1/%00/"]
)
def test_an_api_path_that_matches_no_route_is_404_json(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert _contract(response)["code"] == "not_found"


def test_outside_the_api_a_missing_page_stays_django_html(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_an_unexpected_failure_in_an_api_view_is_500_json_and_elsewhere_html(rf, api, monkeypatch):
    def explode(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(TrialViewSet, "list", explode)
    api.raise_request_exception = False
    response = api.get("/api/v1/trials/")
    assert response.status_code == 500
    assert _contract(response)["code"] == "server_error"
    assert "boom" not in response.content.decode()
    page = server_error(rf.get("/admin/"))
    assert page.status_code == 500 and not page["Content-Type"].startswith("application/json")


def test_too_many_form_fields_under_the_api_are_refused_as_json_unread(api, world, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    participant = Participant.objects.order_by("pk").first()
    api.raise_request_exception = False
    response = api.post(
        f"/api/v1/participants/{participant.pk}/withdraw/",
        data="&".join(f"f{i}=1" for i in range(50)),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415  # the API parses JSON only: the form is never read
    assert _contract(response)["code"] == "unsupported_media_type"


def test_every_write_operation_declares_json_as_its_only_request_media_type(schema):
    bodies = [
        (template, method, set(operation["requestBody"]["content"]))
        for template, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS and "requestBody" in operation
    ]
    assert len(bodies) > 20
    assert [(t, m, types) for t, m, types in bodies if types != {"application/json"}] == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "reason=moved+away"),
        ("multipart/form-data; boundary=BoUnDaRy", '--BoUnDaRy\r\nContent-Disposition: form-data; name="reason"'
         '\r\n\r\nmoved away\r\n--BoUnDaRy--\r\n'),
        ("text/plain", '{"reason": "moved away"}'),
    ],
)  # fmt: skip
def test_a_body_that_is_not_json_is_415_in_the_json_contract_on_every_write(api, world, schema, content_type, body):
    for template, method, _ in _write_operations(schema):
        path = _fill(template, world.trial)
        response = getattr(api, method)(path, data=body, content_type=content_type)
        assert response.status_code == 415, (method, path, response.status_code)
        assert _contract(response)["code"] == "unsupported_media_type", (method, path)
