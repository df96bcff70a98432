"""A delivery task sends a batch of claimed reminders: one transaction, one mail connection, each row's own outcome."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reminders import services
from reminders.models import Reminder, ReminderDelivery
from reminders.tasks import delivery_chunks
from tests.mail_backends import CountingLocmem

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def counting(settings, outbox):
    settings.EMAIL_BACKEND = "tests.mail_backends.CountingLocmem"
    CountingLocmem.opened, CountingLocmem.refuse_subjects, CountingLocmem.unreachable = 0, (), False
    yield CountingLocmem
    CountingLocmem.refuse_subjects, CountingLocmem.unreachable = (), False


def _claimed(site, count, *, start=0):
    for n in range(start, start + count):
        services.reminder_schedule(
            kind="visit-window-opens", subject=f"visit:{n}", subject_label=f"Day 7 visit of P{n:03d}",
            due_at=NOW - timedelta(minutes=1), trial=site.trial, site=site,
        )  # fmt: skip
    published = []
    services.reminders_sweep(publish_many=published.extend, now=NOW)
    return published


def test_a_batch_sends_each_reminder_once_over_one_mail_connection(site, nurse, counting, outbox):
    ids = _claimed(site, 5)
    outcomes = services.reminders_deliver(reminder_ids=ids)
    assert outcomes == dict.fromkeys(ids, Reminder.State.SENT)
    assert len(outbox) == 5
    assert sorted(m.extra_headers["X-Reminder-Key"] for m in outbox) == sorted(
        Reminder.objects.filter(pk__in=ids).values_list("dedupe_key", flat=True)
    )
    assert counting.opened == 1, "one SMTP session for the batch, not one per message"
    assert ReminderDelivery.objects.filter(reminder_id__in=ids, outcome="sent", attempt=1).count() == 5


def test_running_a_batch_twice_sends_nothing_more(site, nurse, counting, outbox):
    ids = _claimed(site, 3)
    services.reminders_deliver(reminder_ids=ids)
    assert services.reminders_deliver(reminder_ids=ids) == dict.fromkeys(ids, "skipped:sent")
    assert len(outbox) == 3


def test_a_message_the_server_refuses_retries_alone_and_the_rest_of_the_batch_is_sent(
    site, nurse, counting, outbox, settings
):
    settings.REMINDER_RETRY_SECONDS = 60
    ids = _claimed(site, 4)
    counting.refuse_subjects = ("P002",)
    with time_machine.travel(NOW, tick=False):
        outcomes = services.reminders_deliver(reminder_ids=ids)
    refused = Reminder.objects.get(subject="visit:2")
    assert outcomes[refused.pk] == Reminder.State.PENDING
    assert [state for pk, state in outcomes.items() if pk != refused.pk] == [Reminder.State.SENT] * 3
    assert len(outbox) == 3
    assert (refused.attempts, refused.due_at) == (1, NOW + timedelta(seconds=60))
    assert "SMTPRecipientsRefused" in refused.last_error
    assert counting.opened == 2, "after a refusal the next message opens a new session"


def test_an_unreachable_mail_server_is_tried_once_per_batch_and_every_row_waits_for_its_retry(
    site, nurse, counting, outbox
):
    ids = _claimed(site, 4)
    counting.unreachable = True
    outcomes = services.reminders_deliver(reminder_ids=ids)
    assert outcomes == dict.fromkeys(ids, Reminder.State.PENDING)
    assert counting.opened == 1, "one connection timeout for the batch, not one per message"
    rows = Reminder.objects.filter(pk__in=ids)
    assert {(r.state, r.attempts) for r in rows} == {(Reminder.State.PENDING, 1)}
    assert all("timed out connecting" in r.last_error for r in rows)
    assert ReminderDelivery.objects.filter(reminder_id__in=ids, outcome="failed").count() == 4
    assert outbox == []


def test_a_batch_with_cancelled_missing_and_claimed_rows_sends_only_the_claimed(site, nurse, counting, outbox):
    ids = _claimed(site, 3)
    services.reminder_cancel(subject="visit:1", reason="visit recorded")
    cancelled = Reminder.objects.get(subject="visit:1").pk
    outcomes = services.reminders_deliver(reminder_ids=[*ids, 999_999])
    assert outcomes[cancelled] == "skipped:cancelled"
    assert outcomes[999_999] == "skipped:missing"
    assert len(outbox) == 2


@pytest.mark.parametrize("rows", [5, 40])
def test_a_batchs_queries_grow_with_its_recipient_groups_not_its_rows(site, nurse, counting, rows):
    ids = _claimed(site, rows)
    with CaptureQueriesContext(connection) as queries:
        services.reminders_deliver(reminder_ids=ids)
    # the locking SELECT, the addresses, the bulk UPDATE, its history INSERT, the delivery INSERT, the transaction
    assert len(queries) <= 8
    assert Reminder.objects.filter(pk__in=ids, state="sent").count() == rows


@pytest.mark.parametrize(
    ("ids", "size", "chunks"),
    [
        ([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
        ([1, 2, 3], 25, [[1, 2, 3]]),
        ([1, 2, 3], 1, [[1], [2], [3]]),
        ([], 25, []),
    ],
)
def test_a_sweep_batch_goes_out_as_delivery_tasks_of_the_configured_size(ids, size, chunks):
    assert delivery_chunks(ids, size) == chunks


def test_a_stale_claim_is_taken_back_before_newly_due_rows(site, settings):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 60
    [stale] = _claimed(site, 1)
    Reminder.objects.filter(pk=stale).update(claimed_at=NOW - timedelta(minutes=5))
    for n in (7, 8):
        services.reminder_schedule(
            kind="visit-window-opens", subject=f"visit:{n}", subject_label=f"P{n}",
            due_at=NOW - timedelta(hours=n), trial=site.trial, site=site,
        )  # fmt: skip
    batches = []
    services.reminders_sweep(publish_many=batches.append, now=NOW, batch_size=2)
    due = list(
        Reminder.objects.filter(subject__in=["visit:8", "visit:7"]).order_by("due_at").values_list("pk", flat=True)
    )
    assert batches == [[stale], due], "the stale claim first, then the due rows oldest first"
