"""Enrollment latency under load: p95 with 50 concurrent clients ÷ p95 with one client.

PostgreSQL behind gunicorn, both measured in the same run against the same server. Sets itself up
from nothing: (re)creates a dedicated database, migrates, loads the protocol, makes the users and
token, opens the first cohort and creates the eligible participants. See bench/README.md.

    .venv/bin/python bench/enroll_latency.py            # or: make bench

Prints a JSON summary; exits 1 if any request got a 5xx (or no answer), 2 if the answers were not
the ones the scenario expects (then the figures do not measure what they claim to).
"""

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 5.0
HOST = "127.0.0.1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to drop and create the bench database",
    )
    parser.add_argument("--database", default="cohort_manager_bench", help="dropped and recreated (must end _bench)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--per-client", type=int, default=6, help="requests per concurrent client")
    parser.add_argument("--single", type=int, default=80, help="requests of the single client")
    return parser.parse_args()


# --- database and Django -------------------------------------------------------------------------


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


def django_setup(database_url: str) -> dict:
    """Configure this process for the bench database; return the environment gunicorn gets."""
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return env


def protocol_copy(directory: Path, *, registry_id: str, cohort_size: int, max_per_dose_level: int) -> Path:
    from django.conf import settings

    data = json.loads((settings.BASE_DIR / "trial" / "protocols" / "NCT06949137.json").read_text(encoding="utf-8"))
    data["registry_id"] = registry_id
    data["parameters"].update(cohort_size=cohort_size, max_per_dose_level=max_per_dose_level)
    path = directory / f"{registry_id}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def make_users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import INVESTIGATOR, SITE_STAFF
    from core.tokens import token_issue

    users = []
    for username, role in (("bench-coordinator", SITE_STAFF), ("bench-investigator", INVESTIGATOR)):
        user = get_user_model()(username=username, is_staff=True)
        user.set_unusable_password()  # token only; skips the deliberately slow password hash
        user.save()
        user.groups.add(Group.objects.get(name=role))
        users.append(user)
    coordinator, investigator = users
    return coordinator, investigator, token_issue(user=coordinator)[1]


def assign_to_sites(trial, users) -> None:
    """Site staff act only at the sites they are assigned to (trial.access): assign the bench's users to the
    trial's sites, as a data manager would (a superuser here, bench setup)."""
    from django.contrib.auth import get_user_model

    from trial.access import site_assignment_save

    admin, created = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        admin.set_unusable_password()
        admin.save()
    for site in trial.sites.all():
        for user in users:
            site_assignment_save(user=user, site=site, by=admin, reason="benchmark")


def template_participant(trial, *, coordinator, investigator):
    """One participant screened, judged and consented through the services, as staff would."""
    from django.utils import timezone

    from cohorts import services
    from cohorts.models import ConsentDocument, Participant
    from cohorts.selectors import eligibility_summary, site_today
    from tests.factories import ELIGIBLE_SCREENING

    site = trial.sites.order_by("pk").first()
    participant = services.participant_register(
        trial=trial,
        site=site,
        screening_number="TEMPLATE",
        date_of_birth=dt.date(1960, 3, 15),
        sex="F",
        initials="BT",
        by=coordinator,
    )
    services.screening_record_save(
        participant=participant,
        values={**ELIGIBLE_SCREENING, "screening_date": site_today(participant)},
        fractures=[],
        by=coordinator,
    )
    for code in eligibility_summary(participant).pending_judgment:
        services.judgment_confirm(participant=participant, code=code, satisfied=True, by=investigator)
    document, _ = ConsentDocument.objects.get_or_create(
        trial=trial, version="1.0", defaults={"effective_from": dt.date(2025, 1, 1), "title": "ICF"}
    )
    services.consent_record(
        participant=participant, document=document, signed_at=timezone.now() - dt.timedelta(minutes=5), by=coordinator
    )
    participant = Participant.objects.get(pk=participant.pk)
    assert participant.status == Participant.Status.ELIGIBLE, participant.status
    return participant


def clone_eligible(template, *, count: int, prefix: str) -> list[int]:
    """``count`` copies of the template's rows (bench setup: bulk_create, no history rows).

    The first copy is evaluated by ``eligibility_evaluate``; the others get its verdicts, assessments
    and status. ``enroll_participant`` re-evaluates every criterion and the consent under the lock,
    so the measured requests do the full work whatever these rows say.
    """
    from cohorts import services
    from cohorts.models import ConsentRecord, CriterionAssessment, JudgmentConfirmation, Participant, ScreeningRecord
    from cohorts.selectors import current_consent

    screening = template.screening
    consent = current_consent(template)
    judgments = list(template.judgments.all())
    values = {
        f.attname: getattr(screening, f.attname)
        for f in ScreeningRecord._meta.concrete_fields
        if f.name not in {"id", "participant", "verdict", "evaluated_at"}
    }
    people = Participant.objects.bulk_create(
        Participant(
            trial_id=template.trial_id,
            site_id=template.site_id,
            screening_number=f"{prefix}{i:04d}",
            date_of_birth=template.date_of_birth,
            sex=template.sex,
            initials=template.initials,
        )
        for i in range(count)
    )
    ScreeningRecord.objects.bulk_create(ScreeningRecord(participant=p, **values) for p in people)
    JudgmentConfirmation.objects.bulk_create(
        JudgmentConfirmation(
            participant=p,
            code=j.code,
            satisfied=j.satisfied,
            note=j.note,
            confirmed_by_id=j.confirmed_by_id,
            confirmed_at=j.confirmed_at,
        )
        for p in people
        for j in judgments
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            participant=p,
            document_id=consent.document_id,
            signed_at=consent.signed_at,
            obtained_by_id=consent.obtained_by_id,
        )
        for p in people
    )
    first, rest = people[0], people[1:]
    assert services.eligibility_evaluate(participant=first).eligible
    evaluated = ScreeningRecord.objects.get(participant=first)
    assessments = list(evaluated.assessments.all())
    CriterionAssessment.objects.bulk_create(
        CriterionAssessment(
            screening_id=pk, code=a.code, kind=a.kind, verdict=a.verdict, reason=a.reason, order=a.order
        )
        for pk in ScreeningRecord.objects.filter(participant__in=rest).values_list("pk", flat=True)
        for a in assessments
    )
    ScreeningRecord.objects.filter(participant__in=rest).update(
        verdict=evaluated.verdict, evaluated_at=evaluated.evaluated_at
    )
    Participant.objects.filter(pk__in=[p.pk for p in rest]).update(status=Participant.Status.ELIGIBLE)
    return [p.pk for p in people]


def set_up(args) -> dict:
    """Both scenarios' data. Returns cohort ids, participant ids and the token."""
    from django.core.management import call_command

    from cohorts import services
    from cohorts.models import Participant
    from trial.models import Trial

    call_command("migrate", verbosity=0, interactive=False)
    call_command("load_protocol", stdout=io.StringIO(), stderr=io.StringIO())
    coordinator, investigator, token = make_users()

    # Refusals: the real protocol (cohorts of 3), its first cohort opened and filled through the
    # service. Every measured request is then a complete enrollment attempt that locks the cohort
    # row, counts and is refused with 409 cohort_full.
    full_trial = Trial.objects.get(registry_id="NCT06949137")
    assign_to_sites(full_trial, [coordinator, investigator])
    full_cohort = services.cohort_open_first(trial=full_trial, by=investigator)
    template = template_participant(full_trial, coordinator=coordinator, investigator=investigator)
    refusal_pool = clone_eligible(template, count=3 + args.clients, prefix="R")
    for pk in refusal_pool[:3]:
        services.enroll_participant(participant=Participant.objects.get(pk=pk), cohort=full_cohort, by=coordinator)

    # Successes: a copy of the protocol whose cohort holds everyone the bench enrolls. The protocol
    # file allows at most 100 per cohort, so the copy is loaded with 100 and the size raised in the
    # database afterwards (bench setup only; the trial's CHECK constraints still hold).
    needed = args.single + args.clients * args.per_client
    with tempfile.TemporaryDirectory() as directory:
        path = protocol_copy(Path(directory), registry_id="BENCH0001", cohort_size=100, max_per_dose_level=1000)
        call_command("load_protocol", file=path, stdout=io.StringIO(), stderr=io.StringIO())
    size = max(1000, needed)
    Trial.objects.filter(registry_id="BENCH0001").update(cohort_size=size, max_per_dose_level=size)
    open_trial = Trial.objects.get(registry_id="BENCH0001")
    assign_to_sites(open_trial, [coordinator, investigator])
    open_cohort = services.cohort_open_first(trial=open_trial, by=investigator)
    template = template_participant(open_trial, coordinator=coordinator, investigator=investigator)
    success_pool = clone_eligible(template, count=needed, prefix="S")

    from django.db import connections

    connections.close_all()  # the forked clients must not share this process's database socket
    return {
        "token": token,
        "full_cohort": full_cohort.pk,
        "refusal_pool": refusal_pool[3:],
        "open_cohort": open_cohort.pk,
        "success_pool": success_pool,
        "capacity": size,
    }


# --- server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict, workers: int, log_path: Path):
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-b",
                f"{HOST}:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited early; see {log_path}")
            with contextlib.suppress(OSError):
                probe = http.client.HTTPConnection(HOST, port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz; see {log_path}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- clients -------------------------------------------------------------------------------------


def enroll_once(port: int, path: str, token: str, participant_id: int) -> tuple[float, int | None, str]:
    """One enrollment request as a client sees it: connect, POST, read. (seconds, status, code)."""
    body = json.dumps({"participant": participant_id})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Accept": "application/json"}
    start = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
    except OSError as exc:
        return time.perf_counter() - start, None, type(exc).__name__
    elapsed = time.perf_counter() - start
    try:
        code = json.loads(raw).get("code", "") if response.status >= 400 else ""
    except ValueError:
        code = "not_json"
    return elapsed, response.status, code


def client_loop(barrier, results, port: int, path: str, token: str, participant_ids: list[int]) -> None:
    """A closed-loop client (its own process): waits for the others, then sends its requests back to back."""
    barrier.wait(timeout=120)
    results.put([enroll_once(port, path, token, pid) for pid in participant_ids])


def run_phase(port: int, token: str, cohort_id: int, assignments: list[list[int]]) -> tuple[list, float]:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(assignments))
    results = context.Queue()
    path = f"/api/v1/cohorts/{cohort_id}/enrollments/"
    clients = [
        context.Process(target=client_loop, args=(barrier, results, port, path, token, ids), daemon=True)
        for ids in assignments
    ]
    start = time.perf_counter()
    for client in clients:
        client.start()
    samples = [sample for _ in clients for sample in results.get(timeout=600)]
    wall = time.perf_counter() - start
    for client in clients:
        client.join(timeout=30)
    return samples, wall


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarise(samples: list, wall: float) -> dict:
    latencies = [s[0] for s in samples]
    statuses: dict[str, int] = {}
    for _, status, code in samples:
        key = f"{status} {code}".strip() if status is not None else f"no answer ({code})"
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "throughput_rps": round(len(samples) / wall, 1),
        "answers": dict(sorted(statuses.items())),
        "5xx": sum(1 for _, status, _ in samples if status is None or status >= 500),
    }


def scenario(port: int, token: str, cohort_id: int, *, single: list[int], concurrent: list[list[int]]) -> dict:
    single_samples, single_wall = run_phase(port, token, cohort_id, [single])
    concurrent_samples, concurrent_wall = run_phase(port, token, cohort_id, concurrent)
    out = {
        "single": summarise(single_samples, single_wall),
        "concurrent": summarise(concurrent_samples, concurrent_wall),
    }
    out["ratio_p95"] = round(out["concurrent"]["p95_ms"] / out["single"]["p95_ms"], 2)
    return out


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    database_url = recreate_database(args.admin_url, args.database)
    env = django_setup(database_url)
    data = set_up(args)
    setup_s = time.perf_counter() - started
    token, n = data["token"], args.clients

    with (
        tempfile.TemporaryDirectory() as directory,
        gunicorn(env, args.workers, Path(directory) / "gunicorn.log") as port,
    ):
        # Warm-up (not measured): every worker imports its code and answers a few requests.
        run_phase(port, token, data["full_cohort"], [data["refusal_pool"][:3] for _ in range(2 * args.workers)])
        refusals = scenario(
            port,
            token,
            data["full_cohort"],
            single=[data["refusal_pool"][i % n] for i in range(args.single)],
            concurrent=[[data["refusal_pool"][c]] * args.per_client for c in range(n)],
        )
        pool = data["success_pool"]
        successes = scenario(
            port,
            token,
            data["open_cohort"],
            single=pool[: args.single],
            concurrent=[
                pool[args.single + c * args.per_client : args.single + (c + 1) * args.per_client] for c in range(n)
            ],
        )
        log_tail = (Path(directory) / "gunicorn.log").read_text()[-3000:]

    from cohorts.models import Enrollment

    enrolled = Enrollment.objects.filter(cohort_id=data["open_cohort"]).count()
    slots = set(Enrollment.objects.filter(cohort_id=data["open_cohort"]).values_list("slot", flat=True))
    phases = [refusals["single"], refusals["concurrent"], successes["single"], successes["concurrent"]]
    five_xx = sum(p["5xx"] for p in phases)
    created = sum(p["answers"].get("201", 0) for p in phases)
    expected = {
        "refusals all 409 cohort_full": all(set(p["answers"]) == {"409 cohort_full"} for p in phases[:2]),
        "successes all 201": all(set(p["answers"]) == {"201"} for p in phases[2:]),
        "slots 1..n once each": enrolled == created and slots == set(range(1, enrolled + 1)),
    }
    summary = {
        "server": {
            "gunicorn_workers": args.workers,
            "cpus": os.cpu_count(),
            "database": args.database,
            "db_conn_max_age": os.environ.get("DB_CONN_MAX_AGE", "60"),  # the settings default
        },
        "clients": n,
        "requests": sum(p["requests"] for p in phases),
        "successes": created,
        "5xx": five_xx,
        "ratio_p95": {"refusals": refusals["ratio_p95"], "successes": successes["ratio_p95"]},
        "goal": f"ratio_p95 <= {GOAL_RATIO} with zero 5xx",
        "goal_met": five_xx == 0 and max(refusals["ratio_p95"], successes["ratio_p95"]) <= GOAL_RATIO,
        "refusals_cohort_full": refusals,
        "successes_enrolled": successes,
        "checks": expected,
        "setup_s": round(setup_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    if five_xx:
        print(f"{five_xx} requests got a 5xx or no answer; gunicorn log tail:\n{log_tail}", file=sys.stderr)
        return 1
    if not all(expected.values()):
        print("the answers were not the ones the scenario expects", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
