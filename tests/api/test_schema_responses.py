"""Every response a reader gets validates against the OpenAPI schema (issue 13, item 3).

A seeded trial (tests.dashboard.seed: cohorts, an escalation, reviews, adverse events with clocks, visits done
and missed, deviations) is read through every list of the router, every row's detail, the trial, its summary
and its escalation history, by a sponsor, a committee member and a superuser. Each body must validate against
the 200 response the schema declares for that path: the sponsor's against the sponsor components (which do
not require identifiers such as `date_of_birth`), and every field that comes back null must be declared
`nullable`. The schema is OpenAPI 3.0; ``nullable`` is turned into JSON Schema's ``null`` type to validate.
"""

import re

import jsonschema
import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from api.urls import router
from core.roles import SAFETY_COMMITTEE, SPONSOR
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LISTS = sorted(u.name for u in router.urls if u.name and u.name.endswith("-list"))


def as_json_schema(node):
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes ``anyOf [the schema, null]``."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _template(schema: dict, path: str) -> str:
    for template in schema["paths"]:
        if re.fullmatch(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)), path):
            return template
    raise AssertionError(f"{path} is not in the schema")


def violations(schema: dict, path: str, body) -> list[str]:
    """What is wrong with ``body`` as the 200 response of ``path``'s GET (empty: it validates)."""
    declared = schema["paths"][_template(schema, path)]["get"]["responses"]["200"]["content"]["application/json"]
    validator = jsonschema.Draft7Validator(
        {"allOf": [as_json_schema(declared["schema"])], "components": as_json_schema(schema["components"])}
    )
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(body)]


def _reader(role):
    api = APIClient()
    if role is None:
        api.force_authenticate(UserFactory(username="root-reader", is_superuser=True, is_staff=True))
    else:
        api.force_authenticate(UserFactory(username=f"{role}-reader", role=role, is_staff=role != SPONSOR))
    return api


@pytest.mark.parametrize("role", [SPONSOR, SAFETY_COMMITTEE, None], ids=["sponsor", "committee", "superuser"])
def test_every_response_a_reader_gets_validates_against_the_schema(nct_trial, schema, role):
    seeded = seed_trial(nct_trial)
    api = _reader(role)
    registry = seeded.trial.registry_id
    paths = [f"/api/v1/trials/{registry}/", f"/api/v1/trials/{registry}/summary/",
             f"/api/v1/trials/{registry}/escalation-history/"]  # fmt: skip
    wrong, read = {}, 0
    with frozen(VIEW):
        for name in LISTS:
            response = api.get(reverse(name), {"limit": 1000})
            if response.status_code == 403:
                continue
            assert response.status_code == 200, name
            body = response.json()
            wrong[reverse(name)] = violations(schema, reverse(name), body)
            read += 1
            rows = body["results"] if isinstance(body, dict) and "results" in body else body
            paths += [reverse(name.replace("-list", "-detail"), kwargs={"pk": row["id"]})
                      for row in rows if "id" in row and name != "trial-list"]  # fmt: skip
        for path in paths:
            response = api.get(path)
            assert response.status_code == 200, path
            wrong[path] = violations(schema, path, response.json())
            read += 1
    assert read > 30
    assert {path: found for path, found in wrong.items() if found} == {}


def test_a_sponsor_participant_validates_only_against_the_sponsor_component(schema):
    staff, sponsor = (schema["components"]["schemas"][name] for name in ("ParticipantStaff", "ParticipantSponsor"))
    assert {"date_of_birth", "screening_number", "initials"} <= set(staff["required"])
    assert not {"date_of_birth", "screening_number", "initials"} & set(sponsor["properties"])
    assert sponsor["additionalProperties"] is False  # a staff body (identifiers) cannot pass as a sponsor's


def test_no_sponsor_component_requires_an_identifier_or_bedside_detail(schema):
    withheld = {"date_of_birth", "screening_number", "initials", "premedication", "administered_by", "vitals",
                "interruptions", "withdrawal_reason", "replacement_reason"}  # fmt: skip
    sponsors = {name: c for name, c in schema["components"]["schemas"].items() if name.endswith("Sponsor")}
    assert set(sponsors) >= {"ParticipantSponsor", "InfusionSponsor"}
    assert {
        name: withheld & set(c["properties"]) for name, c in sponsors.items() if withheld & set(c["properties"])
    } == {}
