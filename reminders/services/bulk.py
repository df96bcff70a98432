"""Scheduling many reminders at once, for a sweep that finds many facts in one transaction (the follow-up
sweep's missed visits): one SELECT of the dedupe keys and one INSERT per batch, each row with its history row,
so the caller's number of queries does not grow with the number of reminders."""

from collections.abc import Sequence
from datetime import datetime

from core.history import audit, audited_bulk_create
from reminders.kinds import dedupe_key, kind_for
from reminders.models import Reminder


def reminders_schedule_many(items: Sequence[dict], *, by=None) -> list[Reminder]:
    """``reminder_schedule`` for many role-addressed reminders, inside the caller's transaction.

    Each item: ``kind``, ``subject``, ``subject_label``, ``due_at``, and optionally ``trial``, ``site``,
    ``event_at`` (datetime), ``stage``. Idempotent on the dedupe key: a key that exists already is left as
    it is (the database's unique key holds it under any concurrency). Returns the rows created.
    """
    rows: list[Reminder] = []
    for item in items:
        spec = kind_for(item["kind"])
        if spec.per_user:
            raise ValueError(f"{spec.key} is sent to one user: schedule it with reminder_schedule")
        event_at: datetime | None = item.get("event_at")
        rows.append(
            Reminder(
                kind=spec.key,
                dedupe_key=dedupe_key(item["subject"], spec.key, stage=item.get("stage", "")),
                subject=item["subject"],
                subject_label=item["subject_label"][:300],
                trial=item.get("trial"),
                site=item.get("site"),
                recipient_role=spec.role,
                safety=spec.safety,
                channel=Reminder.Channel.EMAIL,
                event_at=event_at,
                due_at=item["due_at"],
            )
        )
    if not rows:
        return []
    existing = set(
        Reminder.objects.filter(dedupe_key__in=[r.dedupe_key for r in rows]).values_list("dedupe_key", flat=True)
    )
    return audited_bulk_create([audit(r, by=by, reason="Scheduled") for r in rows if r.dedupe_key not in existing])
