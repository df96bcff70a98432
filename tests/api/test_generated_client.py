"""A Python client generated from the schema works (issue 13, item 4).

Once per session, openapi-python-client (its own environment, ``.venv/clientgen``, from
requirements/clientgen.lock: ``make install``) generates a client from the schema that ``/api/schema/`` serves
into a temporary directory, with no warning (a warning is an operation or a body the client left out); the
suite imports every module of it. Then, against a live server (pytest-django's ``live_server``):

* as an investigator, the client opens the trial's first cohort and drives a participant from registration
  through screening, the investigator's judgments and consent to enrollment;
* as a sponsor, it reads every list endpoint of the seeded trial and parses every row into the client's
  models (a sponsor's rows lack the direct identifiers: the schema must not require them).

Without the generator the tests are skipped, and under ``CI=true`` they fail instead. docs/api.md says how to
generate the client by hand.
"""

import datetime as dt
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import types
import typing
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from api.urls import router
from cohorts.models import Participant
from cohorts.selectors import site_today
from core.roles import SPONSOR
from tests.conftest import IN_CI
from tests.factories import ELIGIBLE_SCREENING, UserFactory, consent_document, staff_users, token_for

pytestmark = pytest.mark.django_db(transaction=True)

GENERATOR = Path(settings.BASE_DIR) / ".venv" / "clientgen" / "bin" / "openapi-python-client"
PACKAGE = "cohort_client"
# The generator's configuration: the package's name, no formatting afterwards (ruff would only restyle it), and
# the PDF dossier read as bytes (the generator knows application/octet-stream, not application/pdf).
CONFIG = {
    "package_name_override": PACKAGE,
    "project_name_override": PACKAGE,
    "post_hooks": [],
    "content_type_overrides": {"application/pdf": "application/octet-stream"},
}
# Lists a sponsor may not read (docs/api.md: no consent records; lost-to-follow-up flags and reminders are staff
# work): each answers a documented 403, parsed as the client's Error.
SPONSOR_REFUSED = {"v1_consents_list", "v1_lost_to_follow_up_list", "v1_reminders_list"}


@pytest.fixture(scope="session")
def client_package(tmp_path_factory) -> types.ModuleType:
    """The generated client, imported (every module of it), once per session."""
    if not GENERATOR.exists():
        why = f"needs openapi-python-client at {GENERATOR} (`make install`)"
        if IN_CI:
            pytest.fail(f"CI=true but this test {why}", pytrace=False)
        pytest.skip(why)
    root = tmp_path_factory.mktemp("generated-client")
    schema_file, config_file = root / "schema.json", root / "config.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(schema_file))  # what /api/schema/ serves
    config_file.write_text(json.dumps(CONFIG), encoding="utf-8")
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(schema_file), "--config", str(config_file), "--meta", "none",
         "--output-path", str(root / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=root,
    )  # fmt: skip
    output = result.stdout + result.stderr
    if result.returncode != 0 or "Warning" in output:
        pytest.fail(f"openapi-python-client did not generate a clean client:\n{output}", pytrace=False)
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
            importlib.import_module(module.name)
    finally:
        sys.path.remove(str(root))
    return package


def _operation(package, name: str):
    return importlib.import_module(f"{package.__name__}.api.v1.{name}")


def _body_type(operation):
    """The model class of an operation's JSON body (one media type per body: one class)."""
    hint = typing.get_type_hints(operation.sync_detailed)["body"]
    candidates = [t for t in typing.get_args(hint) or (hint,) if hasattr(t, "from_dict")]
    assert len(candidates) == 1, f"{operation.__name__}: one JSON body model expected, got {hint}"
    return candidates[0]


def _call(package, client, name: str, body: dict | None = None, **params):
    operation = _operation(package, name)
    if body is not None:
        params["body"] = _body_type(operation).from_dict(body)
    return operation.sync_detailed(client=client, **params)


def _client(package, live_server, user):
    return package.AuthenticatedClient(
        base_url=live_server.url, token=token_for(user), prefix="Token", raise_on_unexpected_status=True
    )


def _jsonable(values: dict) -> dict:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


def _created(response):
    assert response.status_code == 201, response.content
    assert response.parsed is not None, response.content
    return response.parsed


def test_the_generated_client_drives_a_participant_from_registration_to_enrollment_as_staff(
    client_package, live_server, nct_trial
):
    _, investigator = staff_users()
    staff = _client(client_package, live_server, investigator)
    document = consent_document(nct_trial)

    cohort = _created(_call(client_package, staff, "v1_trials_open_first_cohort_create", registry_id="NCT06949137"))
    registration = {"trial": "NCT06949137", "site": nct_trial.sites.first().pk, "screening_number": "GEN-001",
                    "date_of_birth": "1960-03-15", "sex": "F", "initials": "WL"}  # fmt: skip
    participant = _created(_call(client_package, staff, "v1_participants_create", registration))
    assert (str(participant.status), participant.study_id) == ("screening", None)
    today = site_today(Participant.objects.get(pk=participant.id))
    _created(
        _call(
            client_package,
            staff,
            "v1_participants_screening_update",
            {**_jsonable(ELIGIBLE_SCREENING), "screening_date": today.isoformat(), "fractures": []},
            id=participant.id,
        )
    )
    pending = _call(client_package, staff, "v1_participants_eligibility_retrieve", id=participant.id).parsed
    assert pending.eligible is False and pending.pending_judgment
    for code in pending.pending_judgment:
        _created(
            _call(
                client_package,
                staff,
                "v1_participants_judgments_create",
                {"code": code, "satisfied": True},
                id=participant.id,
            )
        )
    signed_at = (dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    _created(
        _call(
            client_package,
            staff,
            "v1_consents_create",
            {"participant": participant.id, "document": document.pk, "signed_at": signed_at, "witness_name": ""},
        )
    )
    eligibility = _call(client_package, staff, "v1_participants_eligibility_retrieve", id=participant.id).parsed
    assert eligibility.eligible is True
    _created(
        _call(client_package, staff, "v1_cohorts_enrollments_create", {"participant": participant.id}, id=cohort.id)
    )
    enrolled = _call(client_package, staff, "v1_participants_retrieve", id=participant.id).parsed
    assert (str(enrolled.status), enrolled.study_id, enrolled.cohort) == ("enrolled", "9137-001", cohort.id)


LISTS = sorted({u.name for u in router.urls if u.name and u.name.endswith("-list")})


def _list_operations(package) -> dict[str, types.ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(importlib.import_module(f"{PACKAGE}.api.v1").__path__)]
    return {name: _operation(package, name) for name in names if name.endswith("_list")}


def test_the_generated_client_reads_every_list_as_a_sponsor(client_package, live_server, nct_trial):
    package = client_package
    from tests.dashboard.seed import VIEW, frozen, seed_trial

    seeded = seed_trial(nct_trial)
    sponsor = UserFactory(username="sponsor-reader", role=SPONSOR, is_staff=False)
    reader = _client(client_package, live_server, sponsor)
    operations = _list_operations(client_package)
    assert len(operations) >= len(LISTS), (sorted(operations), LISTS)
    params_by_name = {"registry_id": seeded.trial.registry_id, "id": seeded.first.pk, "limit": 1000}
    problems, counts = {}, {}
    with frozen(VIEW):
        for name, operation in operations.items():
            accepted = inspect.signature(operation.sync_detailed).parameters
            params = {k: v for k, v in params_by_name.items() if k in accepted}
            try:
                response = operation.sync_detailed(client=reader, **params)
            except Exception as exc:  # an undocumented status, or a body the client's models cannot parse
                problems[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            if name in SPONSOR_REFUSED:
                if response.status_code != 403 or not isinstance(response.parsed, package.models.Error):
                    problems[name] = f"{response.status_code} (403 and an Error expected)"
                continue
            if response.status_code != 200:
                problems[name] = f"{response.status_code}: {response.content[:300]!r}"
                continue
            page = response.parsed
            counts[name] = len(page.results if hasattr(page, "results") else page)
    assert problems == {}, "\n".join(f"{name}: {problem}" for name, problem in problems.items())
    assert sorted(name for name, count in counts.items() if count == 0) == [], "lists with no row for the sponsor"
