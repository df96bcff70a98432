"""Reminders delivered exactly once by real Celery workers through a real Redis, on the real PostgreSQL."""

import os
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from celery import Celery
from django.utils import timezone

from reminders import services
from reminders.models import Reminder
from reminders.tasks import deliver_reminder
from tests.factories import SiteFactory, UserFactory
from tests.integration.reminder_workers import PrivateRedis, sent_keys, start_worker, wait_for, workers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
DELIVER = "reminders.tasks.deliver_reminder"


@pytest.fixture
def site():
    UserFactory(username="nurse", email="nurse@example.org", role="Site staff")
    return SiteFactory(time_zone="Asia/Shanghai")


@pytest.fixture
def mail_dir(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


def _due(site, subject, **kwargs):
    return services.reminder_schedule(
        kind="visit-window-opens", subject=subject, subject_label=f"Day 1 visit ({subject})",
        due_at=timezone.now() - timedelta(seconds=1), event_at=timezone.now() + timedelta(days=1),
        trial=site.trial, site=site, **kwargs,
    )  # fmt: skip


def _publish(reminder_id):
    deliver_reminder.apply_async((reminder_id,), retry=False)


def _all_sent(ids):
    return Reminder.objects.filter(pk__in=ids, state=Reminder.State.SENT).count() == len(ids)


def test_a_visit_due_tomorrow_produces_exactly_one_email_across_five_sweeps_and_two_workers(
    site, mail_dir, tmp_path, settings
):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 0  # every sweep re-claims what is not locked: duplicates on purpose
    reminder = _due(site, "visit:1")
    with workers(
        start_worker("remA", mail_dir, tmp_path, TEST_MAIL_DELAY="1"),
        start_worker("remB", mail_dir, tmp_path, TEST_MAIL_DELAY="1"),
    ):
        published = 0
        for _ in range(5):
            published += services.reminders_sweep(publish=_publish).published
            time.sleep(0.4)
        wait_for(lambda: _all_sent([reminder.pk]), timeout=60, what="the reminder to be sent")
        time.sleep(2)  # let every duplicate task run to its end
    assert published >= 2, "the sweeps should have sent the row's task more than once"
    assert sent_keys(mail_dir) == [reminder.dedupe_key]
    row = Reminder.objects.get(pk=reminder.pk)
    assert (row.state, row.attempts) == (Reminder.State.SENT, 1)


def test_cancelled_reminders_are_never_sent(site, mail_dir, tmp_path):
    kept = _due(site, "visit:1")
    cancelled = _due(site, "visit:2")
    services.reminder_cancel(subject="visit:2", reason="visit recorded")
    with workers(start_worker("remC", mail_dir, tmp_path)):
        services.reminders_sweep(publish=_publish)
        deliver_reminder.apply_async((cancelled.pk,))  # even a stray task for it sends nothing
        wait_for(lambda: _all_sent([kept.pk]), timeout=60, what="the kept reminder to be sent")
        time.sleep(1)
    assert sent_keys(mail_dir) == [kept.dedupe_key]
    assert Reminder.objects.get(pk=cancelled.pk).state == Reminder.State.CANCELLED


def test_a_worker_killed_during_delivery_delivers_once_after_a_restart(site, mail_dir, tmp_path, settings):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 2
    reminder = _due(site, "visit:1")
    slow = start_worker("remSlow", mail_dir, tmp_path, TEST_MAIL_DELAY="30")
    with workers(slow):
        services.reminders_sweep(publish=_publish)
        wait_for(lambda: list(mail_dir.glob("STARTED-*")), timeout=60, what="the delivery to start")
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(timeout=10)
    assert sent_keys(mail_dir) == []
    assert Reminder.objects.get(pk=reminder.pk).state == Reminder.State.SENDING
    with workers(start_worker("remRestarted", mail_dir, tmp_path)):
        time.sleep(2.5)  # past the claim timeout: the sweep takes the row back from the dead worker
        assert services.reminders_sweep(publish=_publish).claimed == 1
        wait_for(lambda: _all_sent([reminder.pk]), timeout=60, what="the reminder to be sent after the restart")
    assert sent_keys(mail_dir) == [reminder.dedupe_key]


def test_redis_stopped_in_the_middle_of_a_sweep_and_started_again_sends_every_due_reminder_exactly_once(
    site, mail_dir, tmp_path, settings
):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 2
    redis = PrivateRedis(6391, tmp_path)
    redis.start()
    broker = Celery("reminder-itest", broker=redis.url)
    broker.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry=False)
    reminders = [_due(site, f"visit:{n}") for n in range(30)]
    ids = [r.pk for r in reminders]
    published = []

    def publish_then_lose_redis(reminder_id):
        if len(published) == 12:
            redis.stop()  # the broker dies with the sweep half done
        broker.send_task(DELIVER, args=(reminder_id,), retry=False)
        published.append(reminder_id)

    try:
        with workers(start_worker("remRedis", mail_dir, tmp_path, REDIS_URL=redis.url)):
            first = services.reminders_sweep(publish=publish_then_lose_redis, batch_size=10)
            assert first.broker_error, "the sweep should have seen the broker go away"
            assert first.published == 12
            assert Reminder.objects.filter(pk__in=ids, state=Reminder.State.PENDING).count() == 10
            redis.start()
            time.sleep(2.5)  # the claims of the lost tasks expire
            second = services.reminders_sweep(
                publish=lambda pk: broker.send_task(DELIVER, args=(pk,), retry=False), batch_size=10
            )
            assert second.broker_error == ""
            wait_for(lambda: _all_sent(ids), timeout=90, what="every reminder to be sent")
            time.sleep(1)
    finally:
        redis.stop()
    counts = Counter(sent_keys(mail_dir))
    assert sorted(counts) == sorted(r.dedupe_key for r in reminders)
    assert set(counts.values()) == {1}
