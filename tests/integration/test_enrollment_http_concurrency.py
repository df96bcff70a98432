"""Fifty clients POST an enrollment at the same instant to a real gunicorn on the real test database.

The unit of work is the whole stack: gunicorn with several worker processes, token authentication,
the API view, ``enroll_participant`` and PostgreSQL's row lock. Clients are separate OS processes
(forked, stdlib HTTP only), released together by a barrier. Exactly ``k`` get 201, every other one
409 ``cohort_full``, and nothing is ever a 5xx.
"""

import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from cohorts import services
from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from tests.factories import eligible_participant, staff_users, token_for
from tests.integration.participant_pool import clone_eligible, trial_copy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 50
CAPACITIES = (3, 1, 2, 4, 3)
TIMEOUT = 60


# --- setup helpers (the same as in test_enrollment_concurrency.py; see there for the reasoning) -------


# --- the server ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    """The pytest test database (``test_…``), which this transactional test shares with gunicorn."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def server(transactional_db, tmp_path):
    """gunicorn with 4 sync workers on the test database, DEBUG off; stopped before the database is flushed."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "http-concurrency-test-key-0123456789abcdefghijklmnop",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "--workers",
                "4",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"gunicorn exited early:\n{log_path.read_text()}"
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer /healthz:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield port, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the clients ---------------------------------------------------------------------------------------


def _client(barrier, results, port: int, path: str, token: str, participant_id: int) -> None:
    """One forked client process: connect, wait for the others, POST, report (status, JSON body).

    ``http.client`` (what urllib uses underneath) rather than ``urlopen`` so that the TCP connection
    is made before the barrier and only the request itself is raced.
    """
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.connect()
        body = json.dumps({"participant": participant_id})
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Accept": "application/json"}
        barrier.wait(timeout=TIMEOUT)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", "replace")
        results.put((participant_id, response.status, raw))
        conn.close()
    except Exception as exc:  # reported to the test, which fails on it
        results.put((participant_id, None, f"{type(exc).__name__}: {exc}"))


def post_all_at_once(*, port: int, cohort_id: int, token: str, participant_ids: list[int]) -> list[tuple]:
    context = multiprocessing.get_context("fork")  # children inherit the barrier and queue; they never touch Django
    barrier = context.Barrier(len(participant_ids))
    results = context.Queue()
    path = f"/api/v1/cohorts/{cohort_id}/enrollments/"
    connection.close()  # no open database socket is shared with the children
    clients = [
        context.Process(target=_client, args=(barrier, results, port, path, token, pid), daemon=True)
        for pid in participant_ids
    ]
    for client in clients:
        client.start()
    answers = [results.get(timeout=2 * TIMEOUT) for _ in clients]
    for client in clients:
        client.join(timeout=TIMEOUT)
    return answers


def _json(raw: str) -> dict:
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparsed": raw[:300]}


def test_fifty_clients_of_a_live_server_enroll_exactly_k_and_the_rest_get_cohort_full(nct_trial, tmp_path, server):
    port, log_path = server
    coordinator, investigator = staff_users()
    token = token_for(coordinator)
    template = eligible_participant(nct_trial, number="TEMPLATE")

    for rep, k in enumerate(CAPACITIES):
        where = f"repetition {rep} (capacity {k})"
        trial = trial_copy(tmp_path, registry_id=f"NCT8{rep:07d}", cohort_size=k)
        participant_ids = clone_eligible(template, trial=trial, count=CLIENTS, prefix=f"H{rep:02d}-")
        cohort = services.cohort_open_first(trial=trial, by=investigator)

        answers = post_all_at_once(port=port, cohort_id=cohort.pk, token=token, participant_ids=participant_ids)

        broken = [(pid, status, raw[:300]) for pid, status, raw in answers if status is None or status >= 500]
        assert not broken, f"{where}: {len(broken)} 5xx/failed requests, e.g. {broken[0]}\n{log_path.read_text()}"
        statuses = sorted({status for _, status, _ in answers})
        created = [(pid, _json(raw)) for pid, status, raw in answers if status == 201]
        refused = [_json(raw) for _, status, raw in answers if status == 409]
        assert len(created) + len(refused) == CLIENTS, f"{where}: statuses {statuses}: {answers[:3]}"
        assert len(created) == k, f"{where}: {len(created)} answered 201"
        assert {body.get("code") for body in refused} == {"cohort_full"}, f"{where}: {refused[:3]}"
        assert sorted(body["slot"] for _, body in created) == list(range(1, k + 1)), where
        assert [body["slot"] for _, body in created if body["is_sentinel"]] == [1], f"{where}: sentinels"
        study_ids = [body["study_id"] for _, body in created]
        assert sorted(study_ids) == [f"{trial.registry_id[-4:]}-{n:03d}" for n in range(1, k + 1)], where

        rows = list(Enrollment.objects.filter(cohort=cohort).values_list("slot", "is_sentinel", "participant_id"))
        assert sorted(slot for slot, _, _ in rows) == list(range(1, k + 1)), where
        assert [slot for slot, sentinel, _ in rows if sentinel] == [1], where
        assert {pid for _, _, pid in rows} == {pid for pid, _ in created}, where
        db_study_ids = Participant.objects.filter(trial=trial).exclude(study_id=None).values_list("study_id", flat=True)
        assert sorted(db_study_ids) == sorted(study_ids), where
        cohort.refresh_from_db()
        assert cohort.state == Cohort.State.FULL, where
