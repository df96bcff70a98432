"""The sweep's claim and a delivery batch's marks as single PostgreSQL statements, each with its history rows.

The ORM writes the same rows (``reminders.services.delivery``, the path SQLite takes), but builds a model
instance and a history instance per row in Python: at 100,000 reminders that was most of a sweep's time. Here
the database does it: a data-modifying ``WITH`` updates the rows and inserts their history rows (and, for a
delivery, the attempt log) from the updated rows in the same statement. The column lists come from the models,
so a new field is carried along; ``tests/reminders/test_statements.py`` holds both paths to the same rows.
"""

# ruff: noqa: S608 - the statements name tables and columns from the models' meta; every value is a parameter

from datetime import datetime

from django.db import connection

from reminders.models import Reminder, ReminderDelivery

HISTORY_TYPE_CHANGED = "~"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _tracked_columns() -> list[str]:
    return [field.column for field in Reminder.history.model.tracked_fields]


def _history_insert(source: str, *, date: str, reason: str) -> str:
    """INSERT of one history row per row of ``source`` (a CTE returning ``r.*``)."""
    tracked = _tracked_columns()
    columns = ", ".join(_quote(c) for c in [*tracked, "history_date", "history_change_reason", "history_type",
                                            "history_user_id"])  # fmt: skip
    values = ", ".join(f"{source}.{_quote(c)}" for c in tracked)
    return (
        f"INSERT INTO {_quote(Reminder.history.model._meta.db_table)} ({columns}) "
        f"SELECT {values}, {date}, {reason}, '{HISTORY_TYPE_CHANGED}', %(by)s FROM {source}"
    )


def claim_batch(*, stale: bool, before: datetime, now: datetime, limit: int, by_id: int | None) -> list[int]:
    """Claim up to ``limit`` rows (``stale``: ``sending`` claimed before ``before``; else ``pending`` due by
    ``before``), skipping locked ones, set them ``sending`` at ``now`` and write their history rows. Returns the
    ids in the order they were taken (the partial index's order)."""
    table = _quote(Reminder._meta.db_table)
    if stale:
        where, key = "state = 'sending' AND claimed_at < %(before)s", "claimed_at"
    else:
        where, key = "state = 'pending' AND due_at <= %(before)s", "due_at"
    sql = (
        f"WITH picked AS (SELECT id, {key} AS sort_key FROM {table} WHERE {where} ORDER BY {key}, id "
        f"LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        f"claimed AS (UPDATE {table} r SET state = 'sending', claimed_at = %(now)s FROM picked "
        f"WHERE r.id = picked.id RETURNING r.*), "
        f"history AS ({_history_insert('claimed', date='%(now)s', reason='%(reason)s')}) "
        f"SELECT claimed.id FROM claimed JOIN picked ON picked.id = claimed.id ORDER BY picked.sort_key, claimed.id"
    )
    reason = "Claimed for delivery by the sweep"
    params = {"before": before, "now": now, "limit": limit, "by": by_id, "reason": reason}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def mark_sent(sent: list[tuple[int, datetime, str]], *, by_id: int | None) -> int:
    """Mark claimed rows sent — each ``(reminder id, when the backend accepted it, its recipients)`` — with the
    attempt counted, the claim cleared, a history row ("Delivered (attempt n)") and a ``sent`` delivery row each.
    Inside the caller's transaction, which holds the rows' locks. Returns how many rows it marked."""
    if not sent:
        return 0
    table = _quote(Reminder._meta.db_table)
    values = ", ".join(f"(%(id{n})s::bigint, %(at{n})s::timestamptz, %(to{n})s::text)" for n in range(len(sent)))
    params: dict = {"by": by_id}
    for n, (reminder_id, at, recipients) in enumerate(sent):
        params |= {f"id{n}": reminder_id, f"at{n}": at, f"to{n}": recipients}
    deliveries = _quote(ReminderDelivery._meta.db_table)
    reason = "'Delivered (attempt ' || done.attempts || ')'"
    sql = (
        f"WITH accepted(id, at, recipients) AS (VALUES {values}), "
        f"done AS (UPDATE {table} r SET state = 'sent', sent_at = accepted.at, attempts = r.attempts + 1, "
        f"claimed_at = NULL FROM accepted WHERE r.id = accepted.id AND r.state = 'sending' "
        f"RETURNING r.*, accepted.recipients AS delivered_to), "
        f"history AS ({_history_insert('done', date='done.sent_at', reason=reason)}) "
        f"INSERT INTO {deliveries} (reminder_id, attempt, at, outcome, recipients, error) "
        f"SELECT done.id, done.attempts, done.sent_at, '{ReminderDelivery.Outcome.SENT}', done.delivered_to, '' "
        f"FROM done"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
