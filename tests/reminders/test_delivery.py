from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reminders import services
from reminders.models import Reminder, ReminderDelivery
from tests.factories import UserFactory
from tests.mail_backends import FailingThenLocmem

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _due(site, subject="visit:42", kind="visit-window-opens", due_at=NOW - timedelta(minutes=1), **kwargs):
    return services.reminder_schedule(
        kind=kind, subject=subject, subject_label=f"Day 7 visit of {subject}", due_at=due_at, trial=site.trial,
        site=site, **kwargs,
    )  # fmt: skip


def _sweep(**kwargs):
    published = []
    result = services.reminders_sweep(publish=published.append, now=NOW, **kwargs)
    return result, published


def _state(reminder):
    return Reminder.objects.get(pk=reminder.pk).state


def test_the_sweep_claims_due_pending_rows_and_publishes_each_once(site):
    due = _due(site)
    later = _due(site, subject="visit:43", due_at=NOW + timedelta(minutes=1))
    result, published = _sweep()
    assert published == [due.pk]
    assert (result.claimed, result.batches) == (1, 1)
    assert _state(due) == Reminder.State.SENDING
    assert _state(later) == Reminder.State.PENDING
    assert _sweep()[1] == [], "a second sweep finds nothing to claim"


def test_a_cancelled_reminder_is_never_claimed_nor_sent(site, nurse, outbox):
    reminder = _due(site)
    services.reminder_cancel(subject="visit:42", reason="visit recorded")
    assert _sweep()[1] == []
    assert services.reminder_deliver(reminder_id=reminder.pk) == "skipped:cancelled"
    assert outbox == []


def test_a_reminder_cancelled_after_its_claim_is_not_sent_by_its_task(site, nurse, outbox):
    reminder = _due(site)
    _sweep()
    services.reminder_cancel(subject="visit:42", reason="visit recorded")
    assert services.reminder_deliver(reminder_id=reminder.pk) == "skipped:cancelled"
    assert outbox == []


def test_delivery_sends_one_mail_to_the_roles_users_and_running_it_twice_sends_nothing_more(site, nurse, outbox):
    UserFactory(username="nurse2", email="nurse2@example.org", role="Site staff")
    UserFactory(username="noaddress", email="", role="Site staff")
    UserFactory(username="inv", email="inv@example.org", role="Investigator")
    reminder = _due(site)
    _sweep()
    assert services.reminder_deliver(reminder_id=reminder.pk) == Reminder.State.SENT
    assert services.reminder_deliver(reminder_id=reminder.pk) == "skipped:sent"
    assert len(outbox) == 1
    assert sorted(outbox[0].to) == ["nurse2@example.org", "nurse@example.org"]
    row = Reminder.objects.get(pk=reminder.pk)
    assert (row.state, row.attempts, row.claimed_at) == (Reminder.State.SENT, 1, None)
    assert row.sent_at is not None


def test_the_mail_has_plain_text_and_html_with_times_in_the_sites_zone_while_the_row_stores_utc(site, nurse, outbox):
    event = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)  # 00:30 on 5 December in Shanghai
    reminder = _due(site, event_at=event)
    _sweep()
    services.reminder_deliver(reminder_id=reminder.pk)
    message = outbox[0]
    assert "2026-12-05 00:30 (Asia/Shanghai)" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "2026-12-05 00:30 (Asia/Shanghai)" in html
    assert message.subject.startswith(f"[{site.trial.registry_id}] Visit window opens")
    stored = Reminder.objects.get(pk=reminder.pk).event_at
    assert stored == event
    assert stored.utcoffset() == timedelta(0)


def test_a_backend_failing_three_times_then_succeeding_sends_once_with_the_attempts_recorded(
    site, nurse, settings, outbox
):
    settings.EMAIL_BACKEND = "tests.mail_backends.FailingThenLocmem"
    settings.REMINDER_RETRY_SECONDS = 60
    FailingThenLocmem.failures_left = 3
    reminder = _due(site)
    outcomes = []
    with time_machine.travel(NOW, tick=False) as clock:
        for _ in range(10):
            published = []
            services.reminders_sweep(publish=published.append)
            outcomes += [services.reminder_deliver(reminder_id=pk) for pk in published]
            clock.shift(timedelta(minutes=5))
    assert outcomes == ["pending", "pending", "pending", "sent"]
    assert len(outbox) == 1
    row = Reminder.objects.get(pk=reminder.pk)
    assert (row.state, row.attempts) == (Reminder.State.SENT, 4)
    assert "SMTPServerDisconnected" in row.last_error
    log = list(ReminderDelivery.objects.filter(reminder=reminder).values_list("attempt", "outcome"))
    assert log == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "sent")]


def test_a_failed_send_waits_for_its_backoff_before_the_next_attempt(site, nurse, settings, outbox):
    settings.EMAIL_BACKEND = "tests.mail_backends.FailingThenLocmem"
    settings.REMINDER_RETRY_SECONDS = 60
    FailingThenLocmem.failures_left = 1
    reminder = _due(site)
    with time_machine.travel(NOW, tick=False):
        [pk] = _sweep()[1]
        services.reminder_deliver(reminder_id=pk)
        assert Reminder.objects.get(pk=pk).due_at == NOW + timedelta(seconds=60)
    assert services.reminders_sweep(publish=[].append, now=NOW + timedelta(seconds=59)).claimed == 0
    assert services.reminders_sweep(publish=[].append, now=NOW + timedelta(seconds=60)).claimed == 1
    assert _state(reminder) == Reminder.State.SENDING


@time_machine.travel(NOW, tick=False)  # the retry is due at the wall clock's now + 0 s: the sweeps run at NOW
def test_after_the_last_attempt_the_reminder_is_failed_and_stays_in_the_log(site, nurse, settings, outbox):
    settings.EMAIL_BACKEND = "tests.mail_backends.FailingThenLocmem"
    settings.REMINDER_MAX_ATTEMPTS = 2
    settings.REMINDER_RETRY_SECONDS = 0
    FailingThenLocmem.failures_left = 5
    reminder = _due(site)
    results = []
    with time_machine.travel(NOW, tick=False):
        for _ in range(4):
            for pk in _sweep()[1]:
                results.append(services.reminder_deliver(reminder_id=pk))
    assert results == ["pending", "failed"]
    assert _state(reminder) == Reminder.State.FAILED
    FailingThenLocmem.failures_left = 0


def test_a_role_without_any_address_fails_the_attempt_instead_of_counting_it_sent(site, outbox):
    reminder = _due(site, kind="dlt-decision", subject="ae:5")
    _sweep()
    assert services.reminder_deliver(reminder_id=reminder.pk) == Reminder.State.PENDING
    assert "nobody to send to" in Reminder.objects.get(pk=reminder.pk).last_error


def test_a_muted_user_gets_no_mail_of_that_kind_but_still_gets_safety_kinds(site, nurse, outbox):
    other = UserFactory(username="nurse2", email="nurse2@example.org", role="Site staff")
    services.reminder_mute(user=nurse, kind="visit-window-opens", by=nurse)
    visit = _due(site)
    decision = _due(site, kind="decision-effective", subject="review:1")
    for pk in _sweep()[1]:
        services.reminder_deliver(reminder_id=pk)
    by_key = {m.extra_headers["X-Reminder-Key"]: m.to for m in outbox}
    assert by_key[visit.dedupe_key] == [other.email]
    assert sorted(by_key[decision.dedupe_key]) == sorted([nurse.email, other.email])


def test_a_row_stuck_in_sending_past_the_claim_timeout_is_claimed_again(site, settings):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 600
    reminder = _due(site)
    Reminder.objects.filter(pk=reminder.pk).update(
        state=Reminder.State.SENDING, claimed_at=NOW - timedelta(seconds=599)
    )
    assert _sweep()[1] == []
    Reminder.objects.filter(pk=reminder.pk).update(claimed_at=NOW - timedelta(seconds=601))
    assert _sweep()[1] == [reminder.pk]


def test_a_broker_failure_stops_the_sweep_and_leaves_the_rest_claimed_for_the_timeout(site):
    rows = [_due(site, subject=f"visit:{n}") for n in range(5)]
    sent = []

    def publish(pk):
        if len(sent) == 2:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")
        sent.append(pk)

    result = services.reminders_sweep(publish=publish, now=NOW, batch_size=3)
    assert (result.claimed, result.published, result.batches) == (3, 2, 1)
    assert "Connection refused" in result.broker_error
    assert sorted(Reminder.objects.filter(state="sending").values_list("pk", flat=True)) == [r.pk for r in rows[:3]]


@pytest.mark.parametrize("rows", [30, 90])
def test_the_sweeps_queries_grow_with_batches_not_rows(site, rows):
    Reminder.objects.bulk_create(
        Reminder(kind="visit-missed", dedupe_key=f"v:{n}", subject=f"v:{n}", subject_label="x",
                 recipient_role="Site staff", due_at=NOW - timedelta(minutes=1))
        for n in range(rows)
    )  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        result, published = _sweep(batch_size=30)
    assert len(published) == rows
    # per batch: savepoint/transaction, the locking SELECT, the UPDATE, the history INSERT; plus, for each of the two
    # sources (stale claims, due rows), the empty locking SELECT that ends it
    assert len(queries) <= 5 * result.batches + 2 * 3


def test_a_batch_publisher_is_called_once_per_batch_after_its_claim(site):
    rows = [_due(site, subject=f"visit:{n}") for n in range(5)]
    batches = []
    result = services.reminders_sweep(publish_many=batches.append, now=NOW, batch_size=2)
    assert batches == [[rows[0].pk, rows[1].pk], [rows[2].pk, rows[3].pk], [rows[4].pk]]
    assert (result.claimed, result.batches, result.published) == (5, 3, 5)


def test_a_failed_batch_publish_counts_none_of_the_batch_and_leaves_it_claimed_for_the_timeout(site):
    rows = [_due(site, subject=f"visit:{n}") for n in range(3)]

    def publish_many(ids):
        raise ConnectionError("Redis publish batch failed; delivery is uncertain")

    result = services.reminders_sweep(publish_many=publish_many, now=NOW, batch_size=2)
    assert (result.claimed, result.published, result.batches) == (2, 0, 1)
    assert "uncertain" in result.broker_error
    assert _state(rows[2]) == Reminder.State.PENDING
    assert {_state(r) for r in rows[:2]} == {Reminder.State.SENDING}


def test_the_worker_keeps_the_delivery_contract_and_its_database_connection():
    """acks_late with reject_on_worker_lost (a killed worker's task is delivered again), the visibility timeout
    longer than the longest task, and Celery's Django fix-up told not to close the connection after every task."""
    from config.celery import app

    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.broker_transport_options.get("visibility_timeout", 3600) > app.conf.task_time_limit
    assert app.conf.get("CELERY_DB_REUSE_MAX", 0) >= 100
