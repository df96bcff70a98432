"""The backup drill: pg_dump the database, pg_restore it into a scratch database, prove the copy whole.

1. A repeatable-read transaction on the source exports its snapshot; every table is counted in it and
   ``pg_dump --format=custom --snapshot=…`` dumps exactly that state (so the drill may run on a live system).
2. The scratch database is created afresh and ``pg_restore --exit-on-error --no-owner`` loads the dump (data
   first, triggers after: pg_dump puts triggers in its post-data section, so no trigger fires on the rows).
3. Every table is counted in the copy and compared; the copy's user triggers are compared by name.
4. ``verify_signatures`` runs against the source (in this process) and against the copy (a child process with
   ``DATABASE_URL`` pointing at it, with this process's signature keys): both must be intact, and agree.
5. The scratch database is dropped (``--keep`` keeps it). JSON on stdout; exit 1 when anything differs.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone
from psycopg import sql

TRIGGERS = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname"
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"  # the app's schema


def _binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise CommandError(f"{name} is not on PATH: install the PostgreSQL client tools (same major version or newer).")
    return found


def _counts(cursor, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    return counts


def _verify(output: str) -> dict:
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        return {"intact": False, "error": output.strip()[-2000:]}


class Command(BaseCommand):
    help = (
        "Back up the PostgreSQL database with pg_dump, restore it into a scratch database with pg_restore, "
        "compare every table's row count and the triggers, and run verify_signatures on both. Prints JSON; "
        "exits 1 if the copy differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dump", help="where to write the dump (default: $VAR_DIR/backups/<db>-<UTC time>.dump)")
        parser.add_argument("--scratch", help="the scratch database to restore into (default: <db>_restore_drill)")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")

    def handle(self, *args, dump=None, scratch=None, keep=False, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The backup drill needs PostgreSQL (DATABASE_URL=postgres://…).")
        db = connection.settings_dict
        source = db["NAME"]
        scratch = scratch or f"{source}_restore_drill"
        if scratch == source:
            raise CommandError("The scratch database must not be the source database.")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        dump_path = Path(dump) if dump else Path(settings.VAR_DIR) / "backups" / f"{source}-{stamp}.dump"
        dump_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        where = ["--host", db.get("HOST") or "localhost", "--port", str(db.get("PORT") or 5432)]
        where += ["--username", db.get("USER") or "postgres"]
        params = {"host": where[1], "port": where[3], "user": where[5], "password": env["PGPASSWORD"]}

        with psycopg.connect(dbname=source, autocommit=True, **params) as snap:
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = snap.execute("SELECT pg_export_snapshot()").fetchone()[0]
            tables = [row[0] for row in snap.execute(TABLES)]
            before = _counts(snap.cursor(), tables)
            triggers = [row[0] for row in snap.execute(TRIGGERS)]
            dump_args = ["--format=custom", f"--snapshot={snapshot}", "--file", str(dump_path), source]
            subprocess.run(
                [_binary("pg_dump"), *where, *dump_args],
                env=env,
                check=True,
                capture_output=True,
            )
            snap.execute("COMMIT")

        with psycopg.connect(dbname=source, autocommit=True, **params) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            restored = subprocess.run(
                [_binary("pg_restore"), *where, "--no-owner", "--exit-on-error", "--dbname", scratch, str(dump_path)],
                env=env,
                capture_output=True,
                text=True,
            )
            if restored.returncode:
                raise CommandError(f"pg_restore failed: {restored.stderr.strip()[-2000:]}")
            with psycopg.connect(dbname=scratch, **params) as copy:
                after = _counts(copy.cursor(), [t for t in tables if t in {r[0] for r in copy.execute(TABLES)}])
                triggers_after = [row[0] for row in copy.execute(TRIGGERS)]
            verify_copy = self._verify_copy(scratch, params)
        finally:
            if not keep:
                with psycopg.connect(dbname=source, autocommit=True, **params) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))

        verify_source = self._verify_source()
        mismatches = {t: {"source": n, "restored": after.get(t)} for t, n in before.items() if after.get(t) != n}
        missing_triggers = sorted(set(triggers) - set(triggers_after))
        same_heads = verify_source.get("heads") == verify_copy.get("heads")
        ok = not mismatches and not missing_triggers and verify_copy.get("intact") is True and same_heads
        report = {
            "ok": ok,
            "dump": str(dump_path),
            "dump_bytes": dump_path.stat().st_size,
            "scratch_database": scratch,
            "kept": keep,
            "tables": len(before),
            "rows": sum(before.values()),
            "count_mismatches": mismatches,
            "triggers": len(triggers),
            "triggers_missing_after_restore": missing_triggers,
            "verify_signatures_source": verify_source,
            "verify_signatures_restored": verify_copy,
            "chain_heads_equal": same_heads,
        }
        self.stdout.write(json.dumps(report, ensure_ascii=False))
        if not ok:
            sys.exit(1)

    def _verify_source(self) -> dict:
        out = StringIO()
        with contextlib.suppress(SystemExit):  # a broken chain exits 1; the JSON says what broke
            call_command("verify_signatures", stdout=out)
        return _verify(out.getvalue())

    def _verify_copy(self, scratch: str, params: dict) -> dict:
        """verify_signatures as a separate process on the copy, with this process's signature keys."""
        user, password = quote(params["user"], safe=""), quote(params["password"], safe="")
        url = f"postgres://{user}:{password}@{params['host']}:{params['port']}/{quote(scratch, safe='')}"
        keys = ",".join(f"{key_id}:{secret}" for key_id, secret in settings.SIGNATURE_KEYS.items())
        env = {**os.environ, "DATABASE_URL": url, "SIGNATURE_KEYS": keys, "SIGNATURE_KEY_ID": settings.SIGNATURE_KEY_ID}
        env.pop("TEST_DATABASE_NAME", None)
        child = subprocess.run(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "verify_signatures"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return _verify(child.stdout or child.stderr)
