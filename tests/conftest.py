"""Suite-wide setup.

Tests that need a real PostgreSQL or Redis are marked ``postgres`` / ``redis``. Without
DATABASE_URL / REDIS_URL they are skipped and the run lists them (``-rs``); with ``CI=true`` a
missing service fails them instead, so CI can never pass by skipping what matters.
"""

import os

import pytest
from django.conf import settings

from config.celery import app as celery_app

IN_CI = os.environ.get("CI", "").lower() == "true"


def _has_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _has_redis() -> bool:
    return bool(os.environ.get("REDIS_URL"))


def pytest_runtest_setup(item):
    missing = []
    if item.get_closest_marker("postgres") and not _has_postgres():
        missing.append("PostgreSQL (set DATABASE_URL=postgres://…)")
    if item.get_closest_marker("redis") and not _has_redis():
        missing.append("Redis and a Celery worker (set REDIS_URL=redis://…)")
    if missing:
        why = "needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(f"CI=true but this test {why}, which is not configured", pytrace=False)
        pytest.skip(why)


@pytest.fixture(autouse=True)
def _role_groups_after_flush(request):
    """Transactional tests flush every table; the role groups come from a data migration: rebuild them."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        from core.roles import ensure_role_groups

        ensure_role_groups()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness makes every factory user cost ~0.4 s; tests don't need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Tests run with DEBUG off but without collectstatic: no manifest to look static files up in."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True, scope="session")
def _celery_mode():
    """Eager Celery without Redis (tasks run in-process); real broker otherwise."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = not _has_redis()
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = previous


PROTOCOL_FILE = settings.BASE_DIR / "trial" / "protocols" / "NCT06949137.json"


@pytest.fixture
def nct_trial(db):
    """NCT06949137 loaded from its data file, as `make run` loads it."""
    from tests.factories import assign_existing_users
    from trial.models import Trial
    from trial.services import protocol_load

    protocol_load(path=PROTOCOL_FILE)
    trial = Trial.objects.get(registry_id="NCT06949137")
    assign_existing_users(trial=trial)  # users made by earlier fixtures work at its site (trial.access)
    return trial
