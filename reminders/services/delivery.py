"""Delivery, exactly once: the beat sweep claims due rows and sends one delivery task per row after commit;
the delivery task re-reads the row under its lock and marks it sent only after the mail backend accepted.

- The sweep claims ``pending`` rows due now, and ``sending`` rows claimed longer than the claim timeout ago
  (their task was lost: broker restarted, worker killed), with ``select_for_update(skip_locked=True)`` in
  batches: two sweeps, or a sweep and a delivery, never take the same row.
- The delivery holds the row lock while it sends, so two tasks for one row (a reclaimed row whose first task
  comes back) are serialised and the second finds it ``sent``. The row's state decides, not a cache.
- A failed send is recorded (attempts, last error, a delivery row) and the row goes back to ``pending`` with
  exponential backoff, until ``REMINDER_MAX_ATTEMPTS``: then ``failed``, shown in the data manager's log.
- What cannot be made exactly-once: a worker killed after the SMTP server accepted and before the commit.
  The window is the commit itself; the row then goes out again after the claim timeout.
"""

import contextlib
import logging
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.utils import timezone
from django.utils.html import escape

from core.history import audit, audited_bulk_update
from reminders.kinds import kind_for, retry_delay_seconds
from reminders.models import Reminder, ReminderDelivery, ReminderMute
from reminders.services import statements
from trial.access import users_who_see

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    claimed: int
    batches: int
    published: int
    broker_error: str = ""


def _claim_sources(now: datetime, *, by) -> list[Callable[[int], list[int]]]:
    """What a sweep claims, in order: rows stuck in ``sending`` past the claim timeout (their task was lost), then
    ``pending`` rows due now, oldest first; each source claims up to n rows and returns their ids, inside the
    caller's transaction. Two sources rather than one query with ``OR``: each is an ordered scan of its partial
    index that stops at the batch's size, so a batch costs the same however many rows wait behind it (an ``OR``
    sorted every waiting row for every batch: a sweep's time grew with the square of its rows). On PostgreSQL a
    batch is one statement (``reminders.services.statements``); elsewhere the ORM writes the same rows."""
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    if connection.vendor == "postgresql":
        by_id = by.pk if by is not None else None
        return [
            lambda n: statements.claim_batch(stale=True, before=stale, now=now, limit=n, by_id=by_id),
            lambda n: statements.claim_batch(stale=False, before=now, now=now, limit=n, by_id=by_id),
        ]
    locked = Reminder.objects.select_for_update(skip_locked=True)
    stuck = locked.filter(state=Reminder.State.SENDING, claimed_at__lt=stale)
    due = locked.filter(state=Reminder.State.PENDING, due_at__lte=now)
    return [partial(_claim_with_orm, stuck, "claimed_at", now, by), partial(_claim_with_orm, due, "due_at", now, by)]


def _claim_with_orm(rows, key: str, now: datetime, by, limit: int) -> list[int]:
    rows = list(rows.order_by(key, "pk")[:limit])
    ids = [row.pk for row in rows]
    if ids:
        Reminder.objects.filter(pk__in=ids).update(state=Reminder.State.SENDING, claimed_at=now)
        for row in rows:  # the audit trail of the batch UPDATE: one history row per claimed reminder
            row.state, row.claimed_at = Reminder.State.SENDING, now
        Reminder.history.bulk_history_create(
            rows, update=True, default_user=by, default_change_reason="Claimed for delivery by the sweep"
        )
    return ids


def reminders_sweep(
    *,
    publish: Callable[[int], None] | None = None,
    publish_many: Callable[[list[int]], None] | None = None,
    now: datetime | None = None,
    batch_size: int | None = None,
    by=None,
) -> SweepResult:
    """Claim every due reminder, batch by batch, and send its delivery tasks after each batch commits:
    ``publish(reminder_id)`` one at a time, or ``publish_many(reminder_ids)`` a batch's tasks at once (the task
    module's sender: one broker round trip per batch; it raises if the broker did not take them all).

    Queries grow with batches (on PostgreSQL one statement each; elsewhere a locking SELECT, an UPDATE and the
    claimed rows' history in one INSERT), not rows; ``by`` is who claims (the beat task's system actor) in the
    history. If the broker refuses a publish, the sweep stops publishing: the rest of that batch stays
    ``sending`` and the next sweep after the claim timeout sends it again.
    """
    if (publish is None) == (publish_many is None):
        raise ValueError("give publish or publish_many")
    now = now or timezone.now()
    batch_size = batch_size or settings.REMINDER_SWEEP_BATCH
    claimed = batches = published = 0
    broker_error = ""
    sources = _claim_sources(now, by=by)
    while not broker_error and sources:
        with transaction.atomic():
            ids = sources[0](batch_size)
        if ids:
            batches += 1
            claimed += len(ids)
            # after the commit above: a worker can never see the row before it is claimed
            published_now, broker_error = _publish_batch(ids, publish=publish, publish_many=publish_many)
            published += published_now
        if len(ids) < batch_size:
            sources.pop(0)  # this source is drained: the next one
    return SweepResult(claimed=claimed, batches=batches, published=published, broker_error=broker_error)


def _publish_batch(ids: list[int], *, publish, publish_many) -> tuple[int, str]:
    """(how many tasks the broker took, its error). A failed ``publish_many`` counts none of the batch: how many
    went out is unknown, and those that did not are claimed again after the claim timeout."""
    if publish_many is not None:
        try:
            publish_many(ids)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("Reminder sweep stopped publishing at a batch of %s: %s", len(ids), error)
            return 0, error
        return len(ids), ""
    for done, reminder_id in enumerate(ids):
        try:
            publish(reminder_id)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("Reminder sweep stopped publishing at reminder %s: %s", reminder_id, error)
            return done, error
    return len(ids), ""


def site_zone(reminder: Reminder) -> zoneinfo.ZoneInfo:
    name = reminder.site.time_zone if reminder.site_id else "UTC"
    return zoneinfo.ZoneInfo(name)


def format_moment(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    if moment is None:
        return "now"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def reminder_message(reminder: Reminder) -> tuple[str, str, str]:
    """(subject, plain text, HTML): times in the site's zone."""
    spec = kind_for(reminder.kind)
    zone = site_zone(reminder)
    when = format_moment(reminder.event_at or reminder.due_at, zone)
    trial = f"[{reminder.trial.registry_id}] " if reminder.trial_id else ""
    subject = f"{trial}{spec.title}: {reminder.subject_label}"[:250]
    sentence = spec.text.format(label=reminder.subject_label, when=when)
    footer = "Safety reminder: it cannot be muted." if reminder.safety else "You can mute this kind in My reminders."
    plain = f"{sentence}\n\nDue {format_moment(reminder.due_at, zone)}.\n{footer}\n"
    html = (
        f"<p>{escape(sentence)}</p><p>Due {escape(format_moment(reminder.due_at, zone))}.</p>"
        f"<p><small>{escape(footer)}</small></p>"
    )
    return subject, plain, html


def _addressees(reminder: Reminder):
    """Who a reminder is addressed to: its user, or the active users of its role who see its site (a trial-wide
    kind: its trial) in ``trial.access``; a reminder of no trial and no site: every active user of the role."""
    users = get_user_model().objects.filter(is_active=True)
    if reminder.recipient_user_id:
        return users.filter(pk=reminder.recipient_user_id)
    users = users.filter(groups__name=reminder.recipient_role)
    site_id = None if kind_for(reminder.kind).trial_wide else reminder.site_id
    if site_id is None and reminder.trial_id is None:
        return users
    return users_who_see(users, site_id=site_id, trial_id=reminder.trial_id)


def reminder_recipients(reminder: Reminder) -> list[str]:
    """The addresses: the addressees with an address; muted users are left out of a non-safety kind (they still
    see it in-app). One query."""
    users = _addressees(reminder).exclude(email="")
    if not reminder.safety:
        muted = ReminderMute.objects.filter(kind=reminder.kind).values("user_id")
        users = users.exclude(pk__in=muted)
    return sorted(set(users.values_list("email", flat=True)))


def _delivery_row(
    reminder: Reminder, *, attempt: int, at: datetime, outcome: str, recipients: list[str], error: str = ""
) -> ReminderDelivery:
    return ReminderDelivery(
        reminder=reminder, attempt=attempt, at=at, outcome=outcome, recipients="\n".join(recipients),
        error=error[:2000],
    )  # fmt: skip


def reminder_deliver(*, reminder_id: int, by=None) -> str:
    """Send one claimed reminder: ``reminders_deliver`` of one row. Returns the row's state afterwards (``sent``,
    ``pending`` to retry, ``failed``), or why nothing was done (``skipped:<state>``). Safe to run twice."""
    return reminders_deliver(reminder_ids=[reminder_id], by=by)[reminder_id]


def reminders_deliver(*, reminder_ids: Sequence[int], by=None) -> dict[int, str]:
    """Send the claimed reminders among ``reminder_ids`` (one delivery task's batch, ``REMINDER_DELIVERY_BATCH``),
    in one transaction that holds their row locks while the mail goes out over one mail connection. Returns
    each id's outcome as ``reminder_deliver`` does. Safe to run twice, and beside another task for the same rows:
    the locks serialise them (taken in id order), and the state read under the lock decides.

    A row is marked sent only after the mail backend accepted its message; a refused message puts only its own
    row back to ``pending`` with its backoff (or ``failed``), the rest of the batch goes on. Queries grow with
    the batch's distinct recipient groups (role, site or trial, kind), not its rows. ``by``: who delivers, in
    the history (the worker task's system actor).

    The price of the batch: a worker killed after the backend accepted some of the batch's messages and before
    the commit loses the whole batch's marks, so those messages go out again after the claim timeout (with a
    batch of one, only the message being sent). ``REMINDER_DELIVERY_BATCH`` trades that window for throughput.
    """
    outcomes = dict.fromkeys(reminder_ids, "skipped:missing")
    with transaction.atomic():
        rows = list(
            Reminder.objects.select_for_update(of=("self",))
            .select_related("site", "trial")
            .filter(pk__in=list(reminder_ids))
            .order_by("pk")
        )
        claimed = []
        for row in rows:
            if row.state == Reminder.State.SENDING:
                claimed.append(row)
            else:
                outcomes[row.pk] = f"skipped:{row.state}"
        if not claimed:
            return outcomes
        addresses = _RecipientCache()
        sent: list[Reminder] = []
        unsent: list[tuple[Reminder, str]] = []
        deliveries: list[ReminderDelivery] = []
        with _MailConnection() as mail:
            for reminder in claimed:
                recipients = addresses.of(reminder)
                if reminder.channel == Reminder.Channel.IN_APP or (
                    not recipients and not reminder.safety and addresses.all_muted(reminder)
                ):
                    accepted, error = True, ""
                elif not recipients:
                    accepted, error = False, NOBODY
                else:
                    accepted, error = mail.send(reminder, recipients)
                now, attempt = timezone.now(), reminder.attempts + 1
                if accepted:
                    reminder.state, reminder.sent_at = Reminder.State.SENT, now
                    reminder.attempts, reminder.claimed_at = attempt, None
                    audit(reminder, by=by, reason=f"Delivered (attempt {attempt})")
                    sent.append(reminder)
                    outcome = ReminderDelivery.Outcome.SENT
                else:
                    unsent.append((reminder, error))
                    outcome = ReminderDelivery.Outcome.FAILED
                deliveries.append(
                    _delivery_row(
                        reminder, attempt=attempt, at=now, outcome=outcome, recipients=recipients, error=error
                    )
                )
        _mark_sent(sent, [d for d in deliveries if d.outcome == ReminderDelivery.Outcome.SENT], by=by)
        outcomes.update(dict.fromkeys((r.pk for r in sent), Reminder.State.SENT))
        for reminder, error in unsent:
            outcomes[reminder.pk] = _schedule_retry(reminder, error, by=by)
        ReminderDelivery.objects.bulk_create([d for d in deliveries if d.outcome != ReminderDelivery.Outcome.SENT])
    return outcomes


def _mark_sent(sent: list[Reminder], deliveries: list[ReminderDelivery], *, by) -> None:
    """The accepted rows: ``sent``, with their history and delivery rows (on PostgreSQL one statement)."""
    if not sent:
        return
    if connection.vendor == "postgresql":
        marks = [(d.reminder_id, d.at, d.recipients) for d in deliveries]
        by_id = by.pk if by is not None else None
        if statements.mark_sent(marks, by_id=by_id) != len(marks):
            raise RuntimeError("a reminder locked by this delivery was no longer claimed: nothing was marked")
        return
    audited_bulk_update(sent, ["state", "sent_at", "attempts", "claimed_at"])
    ReminderDelivery.objects.bulk_create(deliveries)


NOBODY = "nobody to send to: no active user of the role at its site has an e-mail address"


def _schedule_retry(reminder: Reminder, error: str, *, by) -> str:
    """A refused attempt: back to ``pending`` after its backoff, or ``failed`` after the last attempt."""
    attempt = reminder.attempts + 1
    gave_up = attempt >= settings.REMINDER_MAX_ATTEMPTS
    delay = timedelta(seconds=retry_delay_seconds(attempt, base=settings.REMINDER_RETRY_SECONDS))
    reminder.state = Reminder.State.FAILED if gave_up else Reminder.State.PENDING
    reminder.due_at = reminder.due_at if gave_up else timezone.now() + delay
    reminder.attempts, reminder.last_error, reminder.claimed_at = attempt, error[:2000], None
    outcome = "failed: no more retries" if gave_up else "retry scheduled"
    audit(reminder, by=by, reason=f"Attempt {attempt} {outcome}: {error}"[:300]).save(
        update_fields=["state", "due_at", "attempts", "last_error", "claimed_at"]
    )
    log.warning("Reminder %s attempt %s failed: %s", reminder.pk, attempt, error)
    return Reminder.State.FAILED if gave_up else Reminder.State.PENDING


class _RecipientCache:
    """One batch's addresses: reminders with the same addressees and kind share one query."""

    def __init__(self):
        self._addresses: dict[tuple, list[str]] = {}
        self._muted: dict[tuple, bool] = {}

    @staticmethod
    def _key(reminder: Reminder) -> tuple:
        site_id = None if kind_for(reminder.kind).trial_wide else reminder.site_id
        return (reminder.recipient_user_id, reminder.recipient_role, site_id, reminder.trial_id, reminder.kind,
                reminder.safety)  # fmt: skip

    def of(self, reminder: Reminder) -> list[str]:
        key = self._key(reminder)
        if key not in self._addresses:
            self._addresses[key] = reminder_recipients(reminder)
        return self._addresses[key]

    def all_muted(self, reminder: Reminder) -> bool:
        key = self._key(reminder)
        if key not in self._muted:
            self._muted[key] = _all_muted(reminder)
        return self._muted[key]


def _all_muted(reminder: Reminder) -> bool:
    """Everyone it concerns muted this kind: nothing to e-mail, it counts as delivered (in-app)."""
    users = _addressees(reminder).exclude(email="")
    return users.exists() and not users.exclude(reminder_mutes__kind=reminder.kind).exists()


class _MailConnection:
    """One mail backend connection for a batch (one SMTP session, not one per message), opened when the first
    message goes out; after a failed send the next message opens a new one. A connection that cannot be opened
    fails the rest of the batch with that error at once (each row retried with its backoff): a server that does
    not answer costs one connection timeout per batch, not one per message (the task's time limit)."""

    def __init__(self):
        self._connection = None
        self._cannot_open = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception as exc:  # the messages were accepted already; a failed QUIT changes nothing
                log.warning("Closing the mail connection failed: %s", exc)
        return False

    def send(self, reminder: Reminder, recipients: list[str]) -> tuple[bool, str]:
        subject, plain, html = reminder_message(reminder)
        message = EmailMultiAlternatives(
            subject=subject, body=plain, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
            headers={"X-Reminder-Key": reminder.dedupe_key},
        )  # fmt: skip
        message.attach_alternative(html, "text/html")
        if self._cannot_open:
            return False, self._cannot_open
        if self._connection is None:
            try:
                connection = get_connection(fail_silently=False)
                connection.open()
            except Exception as exc:
                self._cannot_open = f"{type(exc).__name__}: {exc}"
                return False, self._cannot_open
            self._connection = connection
        try:
            sent = self._connection.send_messages([message])
        except Exception as exc:
            self._drop()
            return False, f"{type(exc).__name__}: {exc}"
        if not sent:
            return False, "the mail backend accepted no message"
        return True, ""

    def _drop(self) -> None:
        """After an error the session may be broken: the next message opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already failed: the error recorded is the send's
                connection.close()
