"""Expedited-reporting clocks: started by a serious event (once per kind), completed by the report."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from safety import dlt
from safety.models import AdverseEvent, ReportingClock
from safety.services.reminding import clock_reminders_cancel, clock_reminders_schedule
from trial.access import require_participant_access


def start_reporting_clocks(event: AdverseEvent, *, known_at: datetime, by) -> list[ReportingClock]:
    """Start each clock that applies and has not started (the unique key (event, kind) decides; a re-save
    starts nothing new). ``known_at`` is when the facts that make a new clock apply became known: the
    awareness for a new event, the information's receipt for a follow-up (ICH E2A III.A: "after first
    knowledge ... that a case qualifies")."""
    started = []
    existing = set(ReportingClock.objects.filter(adverse_event=event).values_list("kind", flat=True))
    for due in dlt.reporting_clocks(
        serious=event.serious,
        relationship=event.relationship,
        expected=event.expected,
        fatal_or_life_threatening=event.fatal_or_life_threatening,
        known_at=known_at,
        site_time_zone=event.participant.site.time_zone,
    ):
        if due.kind in existing:
            continue
        clock = ReportingClock(
            adverse_event=event, kind=due.kind, started_at=due.started_at, due_at=due.due_at, recipient=due.recipient
        )
        audit(clock, by=by, reason="Expedited-reporting clock started").save()
        clock_reminders_schedule(clock=clock, event=event, by=by)
        started.append(clock)
    return started


def clock_complete(*, clock: ReportingClock, done_at: datetime, reported_to: str, by) -> ReportingClock:
    require_permission(by, "safety.change_reportingclock", "record expedited reports")
    require_participant_access(by, clock, via="adverse_event.participant")
    if not reported_to.strip():
        raise InvalidInput(ErrorCode.RECIPIENT_REQUIRED, "Say to whom it was reported.", {"reported_to": ["Required."]})
    if "\x00" in reported_to or len(reported_to) > 200:
        raise InvalidInput(
            ErrorCode.INVALID,
            "The recipient must be plain text of at most 200 characters.",
            {"reported_to": ["Invalid."]},
        )
    with transaction.atomic():
        clock = ReportingClock.objects.select_for_update().get(pk=clock.pk)
        if clock.done_at:
            raise RuleViolation(ErrorCode.ALREADY_REPORTED, f"Already reported at {clock.done_at:%Y-%m-%d %H:%M}.")
        if done_at < clock.started_at or done_at > timezone.now():
            raise InvalidInput(ErrorCode.INVALID_TIME, "The report time must lie between awareness and now.")
        clock.done_at, clock.done_by, clock.reported_to = done_at, by, reported_to
        audit(clock, by=by, reason=f"Reported to {reported_to}").save()
        clock_reminders_cancel(clock=clock, by=by)
    return clock
