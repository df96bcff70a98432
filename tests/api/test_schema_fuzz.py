"""The API answers what its OpenAPI schema says, for inputs nobody wrote by hand (issue 13, item 4).

A bounded schemathesis run over every operation of the live schema (``/api/schema/``, read from the Django WSGI
application like any client would), once with a sponsor's token and once with an investigator's, against the
seeded trial of the dashboard tests (two cohorts, adverse events, clocks, reviews: the GETs return real rows).
Each generated request (valid and invalid bodies, parameters and paths) must get

* no server error (5xx);
* a status code the operation documents, with the documented media type;
* a body that validates against the documented schema of that status.

The run is bounded (a few examples per operation, a fixed seed, derandomised, no shrinking) so that it takes
about a minute on a 2-core machine; ``SCHEMA_FUZZ_EXAMPLES`` raises the bound for a longer run by hand
(docs/api.md). Every request runs in a savepoint that is rolled back after it: a random body that is valid is
answered (201) and then forgotten, so each example starts from the same seeded trial.
"""

import logging
import os

import pytest
import schemathesis
import time_machine
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from core.roles import SPONSOR
from tests.dashboard.seed import VIEW, seed_trial
from tests.factories import UserFactory, staff_users, token_for

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "4"))
SEED = 20260513
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "no-shrink": True,
            "deterministic": True,
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    }
)


@pytest.fixture
def wsgi_app(settings):
    """The project's WSGI application, with the request signals that would close the test's connection (and
    with it the transaction that holds the seeded trial) disconnected, as Django's test client does."""
    from config.wsgi import application

    settings.ALLOWED_HOSTS = ["localhost"]  # the Host header of schemathesis's WSGI client
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(nct_trial):
    seeded = seed_trial(nct_trial)
    _, investigator = staff_users()
    sponsor = UserFactory(username="sponsor-reader", role=SPONSOR, is_staff=False)
    return seeded, {"sponsor": token_for(sponsor), "investigator": token_for(investigator)}


@pytest.fixture
def api_schema(world, wsgi_app):
    with time_machine.travel(VIEW, tick=True):
        return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, config=CONFIG)


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failing example is reported as found
    database=None,
    suppress_health_check=list(HealthCheck),
)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def _fuzz(schema, token: str) -> dict[str, str]:
    """Every operation, with valid and with invalid requests: {operation and mode: what failed}."""
    failures = {}
    quiet = logging.getLogger("django.request")  # a line per 4xx; server errors are failures of their own
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with time_machine.travel(VIEW, tick=True):
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in MODES:

                @FUZZ
                @given(case=operation.as_strategy(generation_mode=mode))
                def run(case):
                    with transaction.atomic():
                        case.call_and_validate(headers={"Authorization": f"Token {token}"})
                        transaction.set_rollback(True)

                try:
                    run()
                except Unsatisfiable:  # no invalid request exists (a path's free-text registry id, nothing else)
                    continue
                except (Exception, BaseExceptionGroup) as exc:  # each failure is collected, then all reported together
                    failures[f"{operation.label} ({mode.value})"] = str(exc)
    quiet.setLevel(level)
    return failures


def test_every_operation_answers_a_sponsor_as_its_schema_documents(api_schema, world):
    failures = _fuzz(api_schema, world[1]["sponsor"])
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_every_operation_answers_an_investigator_as_its_schema_documents(api_schema, world):
    failures = _fuzz(api_schema, world[1]["investigator"])
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_run_reports_a_server_error_and_an_undocumented_body(api_schema, world, monkeypatch):
    """The harness itself: a list that fails (500) and a detail that answers a body off its schema are found."""
    from rest_framework.response import Response

    from api.views import TrialViewSet

    def broken_list(self, request, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(TrialViewSet, "list", broken_list)
    monkeypatch.setattr(TrialViewSet, "retrieve", lambda self, request, *a, **k: Response({"id": "not a trial"}))
    failures = _fuzz(api_schema.include(path_regex=r"^/api/v1/trials/(\{registry_id\}/)?$"), world[1]["sponsor"])
    assert set(failures) >= {"GET /api/v1/trials/ (positive)", "GET /api/v1/trials/{registry_id}/ (positive)"}
    assert "Server error" in failures["GET /api/v1/trials/ (positive)"]
    assert "Response violates schema" in failures["GET /api/v1/trials/{registry_id}/ (positive)"]
