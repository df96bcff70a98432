"""A real Celery worker process, a real Redis broker and the real PostgreSQL test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from core.models import Heartbeat
from core.tasks import heartbeat, ping

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    """Start `celery worker` on the test database; stop it afterwards."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--hostname=itest@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_task_round_trips_through_redis_and_a_real_worker(worker):
    from config.celery import app

    assert app.conf.task_always_eager is False
    assert ping.delay("hello").get(timeout=60) == "pong:hello"


def test_the_heartbeat_sent_through_redis_is_recorded_by_the_worker_in_postgresql(worker):
    heartbeat.delay().get(timeout=60)
    deadline = time.monotonic() + 10
    while not Heartbeat.objects.filter(worker__startswith="itest@").exists():
        assert time.monotonic() < deadline, "the worker never recorded the heartbeat"
        time.sleep(0.2)
