"""Reminder sweep at two sizes: 100,000 due reminders against 10,000, on PostgreSQL and Redis with a real worker.

For each size, in one run against the same database, broker and worker: the due rows are inserted
(bulk, not timed), then the sweep claims them in batches and publishes them as delivery tasks of
``REMINDER_DELIVERY_BATCH`` rows (``reminders.tasks.sweep``, as the beat task runs it), and a real Celery
worker delivers every one (``reminders.tasks.deliver_reminders``: row locks, recipients, the mail backend, the
attempt log). Reported per size: the sweep's own time (claim + publish), the end-to-end time until the last row
is ``sent``, and the sweep's SQL queries and batches. See bench/README.md for the goals and figures.

    .venv/bin/python bench/reminder_sweep.py [--sizes 10000 100000] [--concurrency 2]
    REMINDER_DELIVERY_BATCH=1 .venv/bin/python bench/reminder_sweep.py   # one task per reminder

The worker's mail backend is Django's dummy backend (accepts every message, sends nothing): the bench
measures the pipeline, not an SMTP server. Exits 2 if any reminder was not sent exactly once.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 12.0
GOAL_SECONDS = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to drop and create the bench database",
    )
    parser.add_argument("--database", default="cohort_manager_reminders_bench", help="dropped and recreated (_bench)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (prefork)")
    parser.add_argument("--batch", type=int, default=None, help="sweep batch size (default REMINDER_SWEEP_BATCH)")
    return parser.parse_args()


def recreate_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to drop {name!r}: the bench database's name must end with _bench")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def django_setup(database_url: str, redis_url: str) -> dict:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return env


def setup_trial():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from core.roles import SITE_STAFF
    from trial.access import assignments_for_new_user
    from trial.models import Trial

    call_command("migrate", verbosity=0)
    call_command("load_protocol", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    trial = Trial.objects.get(registry_id="NCT06949137")
    site = trial.sites.order_by("pk").first()
    for n in range(3):  # the site's nurses: a reminder to "Site staff" at the site goes to those assigned there
        user = get_user_model()(username=f"bench-nurse{n}", email=f"nurse{n}@example.org", is_staff=True)
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=SITE_STAFF))
        assignments_for_new_user(user=user, sites=[site], reason="Reminder sweep benchmark")
    return trial, site


def insert_due(trial, site, size: int, tag: str) -> None:
    from django.utils import timezone

    from reminders.models import Reminder

    due = timezone.now() - timezone.timedelta(minutes=1)
    rows = (
        Reminder(kind="visit-window-opens", dedupe_key=f"bench:{tag}:{n}:visit-window-opens",
                 subject=f"bench:{tag}:{n}", subject_label=f"Day 7 visit of bench {n}", trial=trial, site=site,
                 recipient_role="Site staff", event_at=due, due_at=due)
        for n in range(size)
    )  # fmt: skip
    Reminder.objects.bulk_create(rows, batch_size=5000)


def start_worker(env: dict, concurrency: int) -> subprocess.Popen:
    # Persistent connections, as .env.example runs the worker: with 0 every task would open its own.
    env = {**env, "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60")}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--concurrency={concurrency}", "--pool=prefork",
         "--loglevel=ERROR", "--hostname=bench@%h", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def measure(trial, site, size: int, tag: str, batch: int | None) -> dict:
    from django.db import connection

    from reminders import tasks
    from reminders.models import Reminder, ReminderDelivery

    insert_due(trial, site, size, tag)
    ours = Reminder.objects.filter(subject__startswith=f"bench:{tag}:")
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(1)
        return execute(sql, params, many, context)

    started = time.perf_counter()
    with connection.execute_wrapper(count):
        result = tasks.sweep(batch_size=batch)  # what the beat task runs
    swept = time.perf_counter() - started
    while ours.exclude(state=Reminder.State.SENT).exists():
        time.sleep(0.25)
    end_to_end = time.perf_counter() - started
    once = ReminderDelivery.objects.filter(reminder__in=ours, outcome="sent").count()
    return {
        "size": size,
        "sweep_seconds": round(swept, 2),
        "end_to_end_seconds": round(end_to_end, 2),
        "sweep_queries": len(queries),
        "batches": result.batches,
        "claimed": result.claimed,
        "published": result.published,
        "sent_deliveries": once,
        "delivered_per_second": round(size / end_to_end, 1),
    }


def main() -> int:
    args = parse_args()
    database_url = recreate_database(args.admin_url, args.database)
    env = django_setup(database_url, args.redis_url)
    subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], check=True, capture_output=True)
    trial, site = setup_trial()
    worker = start_worker(env, args.concurrency)
    try:
        time.sleep(5)  # the worker connects
        small, large = (measure(trial, site, size, f"s{size}", args.batch) for size in args.sizes)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    summary = {
        "small": small,
        "large": large,
        "end_to_end_ratio": round(large["end_to_end_seconds"] / small["end_to_end_seconds"], 2),
        "sweep_ratio": round(large["sweep_seconds"] / small["sweep_seconds"], 2),
        "queries_per_batch_small": round(small["sweep_queries"] / max(small["batches"], 1), 2),
        "queries_per_batch_large": round(large["sweep_queries"] / max(large["batches"], 1), 2),
        "goal": f"ratio <= {GOAL_RATIO}, large end to end < {GOAL_SECONDS} s",
    }
    summary["ratio_met"] = summary["end_to_end_ratio"] <= GOAL_RATIO
    summary["large_under_goal"] = large["end_to_end_seconds"] < GOAL_SECONDS
    print(json.dumps(summary, indent=2))
    exactly_once = all(r["sent_deliveries"] == r["size"] for r in (small, large))
    return 0 if exactly_once else 2


if __name__ == "__main__":
    sys.exit(main())
