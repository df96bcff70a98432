import pytest
import time_machine
from django.utils import timezone

from core.models import Heartbeat
from core.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_heartbeat_is_on_the_beat_schedule():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["heartbeat"]["task"] == "core.tasks.heartbeat"


def test_running_the_heartbeat_twice_keeps_one_row_per_worker_and_counts_both(settings):
    heartbeat.apply()
    heartbeat.apply()
    row = Heartbeat.objects.get()
    assert row.beats == 2


def test_healthz_reports_the_last_heartbeat_and_whether_it_is_recent(client, settings):
    settings.HEARTBEAT_SECONDS = 60
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["heartbeat"]["alive"] is False
    heartbeat.apply()
    body = client.get("/healthz").json()
    assert body["heartbeat"]["alive"] is True
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=5)):
        assert client.get("/healthz").json()["heartbeat"]["alive"] is False


def test_healthz_answers_503_json_when_the_database_is_down(client, monkeypatch):
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
