"""Follow-up visits: done (a minor deviation outside the window) or missed."""

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from cohorts import selectors
from cohorts.models import (
    FollowUpVisit,
    Participant,
    ProtocolDeviation,
)
from cohorts.selectors import site_today
from cohorts.services.data_lock import CORRECT_LOCKED_DATA, data_lock_check
from cohorts.services.deviations import deviation_open_by_system
from cohorts.services.reminding import visit_reminders_cancel
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access


def _lock_visit(visit: FollowUpVisit) -> FollowUpVisit:
    visit = (
        FollowUpVisit.objects.select_for_update(of=("self",))
        .select_related("participant__site", "infusion")
        .get(pk=visit.pk)
    )
    if visit.status != FollowUpVisit.Status.SCHEDULED:
        raise RuleViolation(
            ErrorCode.VISIT_ALREADY_RECORDED, f"{visit.name} is already {visit.get_status_display().lower()}."
        )
    return visit


def _participant_in_follow_up(participant: Participant, *, by, why: str) -> None:
    if participant.status == Participant.Status.INFUSED:
        participant.status = Participant.Status.IN_FOLLOW_UP
        audit(participant, by=by, reason=why).save()


def visit_complete(*, visit: FollowUpVisit, on: date, by, reason: str = "") -> FollowUpVisit:
    """Record a visit as done on ``on`` (the site's date). Outside its window it is recorded, and a minor
    deviation (category visit window) opens. ``reason``: needed only for a data manager's correction of a
    DLT-window visit of a closed cohort (the data lock)."""
    if not by.has_perm(CORRECT_LOCKED_DATA):
        require_permission(by, "cohorts.change_followupvisit", "record follow-up visits")
    require_participant_access(by, visit, via="participant")
    if isinstance(on, datetime) or not isinstance(on, date):
        raise InvalidInput(ErrorCode.INVALID, "The visit date must be a date.", {"on": ["Invalid."]})
    with transaction.atomic():
        visit = _lock_visit(visit)
        participant = visit.participant
        correction = data_lock_check(
            participant=participant,
            record=visit,
            by=by,
            reason=reason,
            perm="cohorts.change_followupvisit",
            action="record follow-up visits",
        )
        if on > site_today(participant):
            raise InvalidInput(
                ErrorCode.DATE_IN_FUTURE, "The visit date cannot be in the future.", {"on": ["In the future."]}
            )
        day0 = selectors.infusion_day(visit.infusion, selectors.site_zone(participant))
        if on < day0:
            raise InvalidInput(
                ErrorCode.DATE_BEFORE_INFUSION,
                f"The visit cannot precede the infusion day ({day0}).",
                {"on": ["Before the infusion."]},
            )
        visit.status = FollowUpVisit.Status.COMPLETED
        visit.done_on = on
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(visit, by=by, reason=f"Visit done on {on}" + (f". {correction}" if correction else "")).save()
        visit_reminders_cancel(visit=visit, why=f"visit done on {on}", by=by)
        if visit.out_of_window:
            deviation_open_by_system(
                participant=participant,
                category=ProtocolDeviation.Category.VISIT_WINDOW,
                severity=ProtocolDeviation.Severity.MINOR,
                description=f"{visit.name} done on {on}, outside its window {visit.window_start} to "
                f"{visit.window_end} (target {visit.target_date}, day {visit.day_offset}).",
                occurred_on=on,
                by=by,
                visit=visit,
                infusion=visit.infusion,
            )
        _participant_in_follow_up(participant, by=by, why=f"Follow-up: {visit.name} done")
    return visit


def visit_miss(*, visit: FollowUpVisit, reason: str, by) -> FollowUpVisit:
    if not by.has_perm(CORRECT_LOCKED_DATA):
        require_permission(by, "cohorts.change_followupvisit", "record follow-up visits")
    require_participant_access(by, visit, via="participant")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    with transaction.atomic():
        visit = _lock_visit(visit)
        audited = data_lock_check(
            participant=visit.participant,
            record=visit,
            by=by,
            reason=reason,
            perm="cohorts.change_followupvisit",
            action="record follow-up visits",
        )
        visit.status = FollowUpVisit.Status.MISSED
        visit.missed_reason = reason
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(visit, by=by, reason=f"Visit missed: {audited}").save()
        visit_reminders_cancel(visit=visit, why="visit recorded as missed", by=by)
        _participant_in_follow_up(visit.participant, by=by, why=f"Follow-up: {visit.name} missed")
    return visit
