"""What the database refuses so that the audit trail stays complete (21 CFR 11.10(e)).

- Every history table (each simple-history model, the many-to-many ones included) and every model that
  says ``append_only = True`` (the failed-signature log) refuses UPDATE and DELETE; on PostgreSQL also
  TRUNCATE (SQLite has none).
- ``auth_user`` refuses DELETE (and TRUNCATE): users are deactivated, never deleted, so "who" in a
  history row always names somebody.

The triggers are (re)installed after every ``migrate`` (``post_migrate``, idempotent), so a new audited
model, or a history table that SQLite rebuilt to add a column, is covered without a migration of its own;
``tests/core/test_append_only.py`` checks every table. Whoever may set ``session_replication_role`` (a
PostgreSQL superuser) or drop a trigger can get past them, as past any trigger: the test suite's flush does
exactly that (``tests/conftest.py``), and nothing else does.
"""

from django.apps import apps
from django.db import connections
from simple_history.models import HistoricalChanges

APPEND_ONLY_MESSAGE = "is append-only: the audit trail is never changed or deleted (21 CFR 11.10(e))"
USER_MESSAGE = "Users are deactivated, never deleted: the audit trail names them"
USER_TABLE = "auth_user"

_PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION core_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '% of %: % {APPEND_ONLY_MESSAGE}', TG_OP, TG_TABLE_NAME, TG_TABLE_NAME
  USING ERRCODE = 'check_violation'; END; $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION core_user_never_deleted() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{USER_MESSAGE}' USING ERRCODE = 'check_violation'; END; $$ LANGUAGE plpgsql;
"""


def append_only_tables() -> list[str]:
    """Every table that only ever gets INSERTs: history tables and models marked ``append_only``."""
    tables = {
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, HistoricalChanges) or getattr(model, "append_only", False)
    }
    return sorted(tables)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _postgres(tables: list[str], *, users: bool) -> list[str]:
    statements = [_PG_FUNCTIONS]
    for table in tables:
        statements += [
            f"CREATE OR REPLACE TRIGGER core_append_only BEFORE UPDATE OR DELETE ON {_quote(table)} "
            "FOR EACH ROW EXECUTE FUNCTION core_append_only();",
            f"CREATE OR REPLACE TRIGGER core_append_only_truncate BEFORE TRUNCATE ON {_quote(table)} "
            "FOR EACH STATEMENT EXECUTE FUNCTION core_append_only();",
        ]
    statements += users * [
        f"CREATE OR REPLACE TRIGGER core_user_never_deleted BEFORE DELETE ON {USER_TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION core_user_never_deleted();",
        f"CREATE OR REPLACE TRIGGER core_user_never_truncated BEFORE TRUNCATE ON {USER_TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION core_user_never_deleted();",
    ]
    return statements


def _sqlite(tables: list[str], *, users: bool) -> list[str]:
    statements = []
    for table in tables:
        message = f"{table} {APPEND_ONLY_MESSAGE}".replace("'", "''")
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {_quote(f'{table}_append_only_{op.lower()}')} BEFORE {op} "
                f"ON {_quote(table)} BEGIN SELECT RAISE(ABORT, '{message}'); END;"
            )
    statements += users * [
        f"CREATE TRIGGER IF NOT EXISTS {USER_TABLE}_never_deleted BEFORE DELETE ON {USER_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{USER_MESSAGE}'); END;"
    ]
    return statements


def install_append_only_triggers(*, using=None, **_) -> None:
    """Create (or replace) every trigger above; safe to run any number of times."""
    connection = connections[using or "default"]
    existing = set(connection.introspection.table_names())
    tables = [table for table in append_only_tables() if table in existing]
    if connection.vendor == "postgresql":
        statements = _postgres(tables, users=USER_TABLE in existing)
    elif connection.vendor == "sqlite":
        statements = _sqlite(tables, users=USER_TABLE in existing)
    else:
        raise NotImplementedError(f"Add the append-only triggers for {connection.vendor} before using it.")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
