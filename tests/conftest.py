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


@pytest.fixture(autouse=True, scope="session")
def _flush_past_the_audit_triggers():
    """Let the flush after a transactional test empty the append-only tables, and nothing else.

    The audit trail's triggers (``core.append_only``, the signature triggers) refuse to delete history, as they
    must outside tests, and so refuse a flush too: PostgreSQL's TRUNCATE and SQLite's row-by-row DELETE. The
    suite's flush alone gets past them, inside its own transaction: on PostgreSQL with ``SET LOCAL
    session_replication_role = replica`` (a superuser setting; the CI role is one), on SQLite by dropping every
    trigger and creating each again from its stored SQL before the transaction commits.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        if self.connection.vendor == "postgresql":
            return original(self, ["SET LOCAL session_replication_role = replica", *sql_list])
        if self.connection.vendor == "sqlite":
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                triggers = cursor.fetchall()
            drops = [f'DROP TRIGGER "{name}"' for name, _ in triggers]
            return original(self, [*drops, *sql_list, *(sql for _, sql in triggers)])
        return original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


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


TEST_SIGNATURE_KEY_ID = "test-key-1"
TEST_SIGNATURE_KEYS = {TEST_SIGNATURE_KEY_ID: "test-only-signature-key-0123456789abcdefghijklmnopqrstuvwxyz"}


@pytest.fixture(autouse=True)
def _signature_key(settings):
    """Signatures are HMACs under a key from settings (never from the database): the tests have their own."""
    settings.SIGNATURE_KEYS = dict(TEST_SIGNATURE_KEYS)
    settings.SIGNATURE_KEY_ID = TEST_SIGNATURE_KEY_ID


@pytest.fixture
def flushable_reviews(transactional_db):
    """Let the flush after a transactional test empty decided reviews, signatures and the chain head.

    The immutability triggers (safety migrations 0003 and 0008) refuse to delete a decided review, a
    signature or a chain-head row, and on PostgreSQL to TRUNCATE a signature table that holds rows. After
    the test (before the flush) those tables are emptied with the triggers out of the way: on PostgreSQL
    with ``session_replication_role = replica`` (no user trigger fires), on SQLite by dropping and
    reinstalling them.
    """
    import importlib

    yield
    from django.db import connection

    tables = ("safety_signaturechainhead", "safety_signoff", "safety_signaturefailure", "safety_safetyreview")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            try:
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
        return
    chain = importlib.import_module("safety.migrations.0008_signature_keys_and_chain_head")
    with connection.schema_editor() as editor:
        chain.drop_triggers(None, editor)
        for table in tables:
            editor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        chain.reinstall(None, editor)


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
    from trial.models import Trial
    from trial.services import protocol_load

    protocol_load(path=PROTOCOL_FILE)
    return Trial.objects.get(registry_id="NCT06949137")
