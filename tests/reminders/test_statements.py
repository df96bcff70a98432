"""On PostgreSQL the sweep's claim and a batch's marks are single statements: the rows, history rows and attempt log
they write are the ones the ORM path writes (every tracked field, who, why, when)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from core.actors import REMINDERS, system_actor
from reminders import services
from reminders.models import Reminder, ReminderDelivery
from reminders.services.statements import claim_batch

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _tracked(row) -> dict:
    return {field.attname: getattr(row, field.attname) for field in Reminder.history.model.tracked_fields}


def _schedule(site, count):
    rows = []
    for n in range(count):
        kwargs = {"trial": site.trial, "site": site, "due_at": NOW - timedelta(minutes=n)}
        rows.append(
            services.reminder_schedule(kind="visit-window-opens", subject=f"v:{n}", subject_label=f"P{n}", **kwargs)
        )
    return rows


def test_the_claim_statement_writes_each_rows_history_with_who_why_and_every_field(site):
    assert connection.vendor == "postgresql"
    rows = _schedule(site, 3)
    actor = system_actor(REMINDERS)
    batches = []
    services.reminders_sweep(publish_many=batches.append, now=NOW, by=actor)
    assert batches == [[r.pk for r in reversed(rows)]], "oldest due first"
    for reminder in Reminder.objects.filter(pk__in=batches[0]):
        assert (reminder.state, reminder.claimed_at) == (Reminder.State.SENDING, NOW)
        last = reminder.history.order_by("-history_id").first()
        assert (last.history_type, last.history_user_id, last.history_date) == ("~", actor.pk, NOW)
        assert last.history_change_reason == "Claimed for delivery by the sweep"
        assert _tracked(last) == _tracked(reminder)


def test_the_sent_statement_marks_counts_logs_and_writes_history_like_the_orm(site, nurse, outbox):
    [reminder] = _schedule(site, 1)
    services.reminders_sweep(publish_many=[].extend, now=NOW)
    actor = system_actor(REMINDERS)
    assert services.reminders_deliver(reminder_ids=[reminder.pk], by=actor) == {reminder.pk: "sent"}
    reminder.refresh_from_db()
    assert (reminder.state, reminder.attempts, reminder.claimed_at) == ("sent", 1, None)
    last = reminder.history.order_by("-history_id").first()
    assert (last.history_type, last.history_user_id, last.history_change_reason) == (
        "~",
        actor.pk,
        "Delivered (attempt 1)",
    )
    assert last.history_date == reminder.sent_at
    assert _tracked(last) == _tracked(reminder)
    [delivery] = ReminderDelivery.objects.filter(reminder=reminder)
    assert (delivery.attempt, delivery.outcome, delivery.recipients, delivery.at) == (
        1, "sent", "nurse@example.org", reminder.sent_at,
    )  # fmt: skip


def test_the_claim_reads_only_a_batch_of_its_ordered_index_however_many_rows_wait(site):
    Reminder.objects.bulk_create(
        Reminder(kind="visit-missed", dedupe_key=f"v:{n}", subject=f"v:{n}", subject_label="x",
                 recipient_role="Site staff", due_at=NOW - timedelta(seconds=n))
        for n in range(3000)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reminders_reminder")
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT id FROM reminders_reminder WHERE state = 'pending' AND due_at <= %s "
            "ORDER BY due_at, id LIMIT 50 FOR UPDATE SKIP LOCKED",
            [NOW],
        )
        plan = str(cursor.fetchone()[0])
    assert "reminder_pending_due_id" in plan and "Sort" not in plan
    assert len(claim_batch(stale=False, before=NOW, now=NOW, limit=50, by_id=None)) == 50
