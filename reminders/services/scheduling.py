"""Scheduling and cancelling reminders: called by the other apps' services INSIDE their transaction, so a
reminder exists exactly when the fact that causes it was committed, and is cancelled with the fact that
ends its need. Muting (non-safety kinds only) and the data manager's audited "send again" live here too."""

from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import acting_user_and_reason, audit
from reminders.kinds import dedupe_key, kind_for
from reminders.models import Reminder, ReminderMute

OPEN_STATES = (Reminder.State.PENDING, Reminder.State.SENDING, Reminder.State.FAILED)


def reminder_schedule(
    *,
    kind: str,
    subject: str,
    subject_label: str,
    due_at: datetime,
    trial=None,
    site=None,
    recipient_user=None,
    event_at: datetime | None = None,
    stage: str = "",
    channel: str = Reminder.Channel.EMAIL,
    by=None,
) -> Reminder:
    """Create the reminder of ``kind`` about ``subject``, or move its due time while it is still pending.

    Idempotent on the dedupe key (``subject:kind[:user:N][:stage]``): a second call changes nothing but the
    due time, the moment and the label of a pending row; a row already sent or cancelled is left as it is.
    """
    spec = kind_for(kind)
    if spec.per_user and recipient_user is None:
        raise ValueError(f"{kind} is sent to one user: give recipient_user")
    key = dedupe_key(subject, kind, user_id=recipient_user.pk if spec.per_user else None, stage=stage)
    label = subject_label[:300]
    reminder = Reminder(
        kind=kind,
        dedupe_key=key,
        subject=subject,
        subject_label=label,
        trial=trial,
        site=site,
        recipient_user=recipient_user if spec.per_user else None,
        recipient_role=spec.role,
        safety=spec.safety,
        channel=channel,
        event_at=event_at,
        due_at=due_at,
    )
    try:
        with transaction.atomic():  # a savepoint: the key may exist already
            audit(reminder, by=by, reason="Scheduled").save()
        return reminder
    except IntegrityError:
        existing = Reminder.objects.select_for_update().filter(dedupe_key=key).first()
        if existing is None:  # the IntegrityError was something else
            raise
    if existing.state == Reminder.State.PENDING and (
        existing.due_at != due_at or existing.event_at != event_at or existing.subject_label != label
    ):
        existing.due_at, existing.event_at, existing.subject_label = due_at, event_at, label
        audit(existing, by=by, reason="Due time updated").save()
    return existing


def reminder_cancel(
    *,
    reason: str,
    subject: str | None = None,
    dedupe_keys: Iterable[str] = (),
    kinds: Iterable[str] = (),
    by=None,
) -> int:
    """Cancel the open reminders of ``subject`` (optionally of ``kinds`` only), or those with ``dedupe_keys``;
    a reminder of theirs already sent is marked resolved (no longer open in-app). Constant queries whatever the
    number of rows (two locking SELECTs, two UPDATEs, their history rows in one INSERT): the cancellation is on
    the row itself (``cancelled_at``, ``cancel_reason``), and the history names ``by`` (or the ``acting_as`` actor).

    A row being sent right now is locked by its delivery: the UPDATE waits for it, then finds it sent and
    leaves it so (PostgreSQL re-checks the condition after the wait). Returns how many were cancelled.
    """
    dedupe_keys, kinds = list(dedupe_keys), list(kinds)
    if (subject is None) == (not dedupe_keys):
        raise ValueError("give subject or dedupe_keys")
    rows = (
        Reminder.objects.filter(subject=subject)
        if subject is not None
        else Reminder.objects.filter(dedupe_key__in=dedupe_keys)
    )
    if kinds:
        rows = rows.filter(kind__in=kinds)
    with transaction.atomic(savepoint=False):  # joins the caller's transaction; its own when called alone
        now = timezone.now()
        resolved = list(rows.filter(state=Reminder.State.SENT, resolved_at__isnull=True).select_for_update())
        cancelled = list(rows.filter(state__in=OPEN_STATES).select_for_update())
        if resolved:
            Reminder.objects.filter(pk__in=[r.pk for r in resolved]).update(resolved_at=now)
            for row in resolved:
                row.resolved_at = now
        if cancelled:
            Reminder.objects.filter(pk__in=[r.pk for r in cancelled]).update(
                state=Reminder.State.CANCELLED, cancelled_at=now, cancel_reason=reason[:300], claimed_at=None
            )
            for row in cancelled:
                row.state, row.cancelled_at, row.cancel_reason, row.claimed_at = (
                    Reminder.State.CANCELLED, now, reason[:300], None
                )  # fmt: skip
        changed = resolved + cancelled
        if changed:  # the audit trail of the two UPDATEs: one history row per changed reminder, in one INSERT
            actor, _ = acting_user_and_reason()
            Reminder.history.bulk_history_create(
                changed, update=True, default_user=by or actor, default_change_reason=f"Cancelled: {reason}"[:300]
            )
        return len(cancelled)


def reminder_cancel_for_user(*, subject: str, kinds: Iterable[str], user, reason: str, by=None) -> int:
    """Cancel the per-user reminders of ``subject`` addressed to ``user`` (e.g. after she signed)."""
    keys = [dedupe_key(subject, kind, user_id=user.pk) for kind in kinds]
    return reminder_cancel(reason=reason, dedupe_keys=keys, by=by)


def reminder_mute(*, user, kind: str, by) -> ReminderMute:
    """Stop e-mail of a non-safety kind for ``user`` (herself, or a superuser for her). Safety kinds cannot be
    muted: reporting clocks, DLT decisions and signatures reach everyone they concern."""
    if by != user and not getattr(by, "is_superuser", False):
        raise PermissionDenied(ErrorCode.PERMISSION_DENIED, "You can mute reminders for yourself only.")
    try:
        spec = kind_for(kind)
    except KeyError:
        raise InvalidInput(ErrorCode.INVALID, f"No reminder kind {kind!r}.", {"kind": ["Unknown."]}) from None
    if spec.safety:
        raise RuleViolation(ErrorCode.REMINDER_NOT_MUTABLE, f"“{spec.title}” is a safety reminder and cannot be muted.")
    with transaction.atomic():
        mute, _ = ReminderMute.objects.get_or_create(user=user, kind=kind)
    return mute


def reminder_unmute(*, user, kind: str, by) -> int:
    if by != user and not getattr(by, "is_superuser", False):
        raise PermissionDenied(ErrorCode.PERMISSION_DENIED, "You can unmute reminders for yourself only.")
    with transaction.atomic():
        deleted, _ = ReminderMute.objects.filter(user=user, kind=kind).delete()
    return deleted


def reminder_send_again(*, reminder: Reminder, reason: str, by) -> Reminder:
    """The data manager sends a sent or failed reminder again: a new row (``…:again:N``) due now, so the
    original keeps its delivery record and the one-sent-delivery-per-row rule holds. Audited with the reason."""
    require_permission(by, "reminders.send_reminder_again", "send reminders again")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=300, required=True, code=ErrorCode.REASON_REQUIRED
    )
    with transaction.atomic():
        original = Reminder.objects.select_for_update().get(pk=reminder.pk)
        if original.state not in (Reminder.State.SENT, Reminder.State.FAILED):
            raise RuleViolation(
                ErrorCode.REMINDER_NOT_FINISHED,
                f"Only a sent or failed reminder can be sent again: this one is {original.state}.",
            )
        again = Reminder.objects.filter(dedupe_key__startswith=f"{original.dedupe_key}:again:").count() + 1
        copy = Reminder(
            kind=original.kind,
            dedupe_key=f"{original.dedupe_key}:again:{again}",
            subject=original.subject,
            subject_label=original.subject_label,
            trial_id=original.trial_id,
            site_id=original.site_id,
            recipient_user_id=original.recipient_user_id,
            recipient_role=original.recipient_role,
            safety=original.safety,
            channel=original.channel,
            event_at=original.event_at,
            due_at=timezone.now(),
        )
        audit(copy, by=by, reason=f"Sent again (of reminder {original.pk}): {reason}").save()
    return copy
