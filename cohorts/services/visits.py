"""Follow-up visits: done (a minor deviation outside the window) or missed (a minor deviation).

A visit the follow-up sweep marked missed (nobody recorded it by the end of its window) may still be
recorded once by staff: as done (late entry: the visit took place; the deviation stays and says when it
was recorded) or as missed with the reason. A visit done or missed by staff is final.
"""

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
from cohorts.services.follow_up import MISSED_REMINDER, follow_up_progress_apply, missed_description
from cohorts.services.participant_lifecycle import (
    ParticipantTransition,
    participant_transition,
    participant_transition_allowed,
)
from cohorts.services.reminding import visit_reminders_cancel
from core.actors import BEAT, system_actor
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit, automatic
from reminders import services as reminder_services
from trial.access import require_participant_access


def _lock_visit(visit: FollowUpVisit) -> FollowUpVisit:
    """The visit's participant, then the visit (the lock order of the follow-up sweep)."""
    participant_id = FollowUpVisit.objects.values_list("participant_id", flat=True).get(pk=visit.pk)
    list(Participant.objects.select_for_update().filter(pk=participant_id).values_list("pk", flat=True))
    visit = (
        FollowUpVisit.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__trial", "infusion")
        .get(pk=visit.pk)
    )
    if visit.status != FollowUpVisit.Status.SCHEDULED and not visit.missed_automatically:
        raise RuleViolation(
            ErrorCode.VISIT_ALREADY_RECORDED, f"{visit.name} is already {visit.get_status_display().lower()}."
        )
    return visit


def _participant_moves_on(participant: Participant, *, by, why: str) -> None:
    """The first visit recorded puts her in follow-up; then the system draws the consequences (completion,
    lost to follow-up pending, or a flag dismissed because she came back)."""
    if participant_transition_allowed(participant, ParticipantTransition.FOLLOW_UP):
        participant_transition(participant=participant, transition=ParticipantTransition.FOLLOW_UP, by=by, reason=why)
    follow_up_progress_apply([participant])


def _missed_deviation(visit: FollowUpVisit) -> ProtocolDeviation | None:
    return ProtocolDeviation.objects.filter(
        visit=visit, category=ProtocolDeviation.Category.VISIT_WINDOW, source=ProtocolDeviation.Source.SYSTEM
    ).first()


def _missed_visit_recorded(visit: FollowUpVisit, note: str, *, by) -> None:
    """Staff recorded a visit the sweep missed: its "visit missed" reminder, if not sent yet, is cancelled."""
    reminder_services.reminder_cancel(
        subject=f"visit:{visit.pk}", kinds=[MISSED_REMINDER], reason="the missed visit was recorded", by=by
    )
    _note_late_record(visit, note)


def _note_late_record(visit: FollowUpVisit, note: str) -> None:
    """The deviation the sweep opened stays; it says what staff recorded later (unless it is closed or locked)."""
    deviation = _missed_deviation(visit)
    if (
        deviation is not None
        and deviation.status == ProtocolDeviation.Status.OPEN
        and selectors.data_locked_cohort(visit.participant, record=deviation) is None
    ):
        deviation.description = f"{deviation.description} {note}"
        audit(deviation, by=system_actor(BEAT), reason=automatic("the missed visit was recorded later")).save()


def visit_complete(*, visit: FollowUpVisit, on: date, by, reason: str = "") -> FollowUpVisit:
    """Record a visit as done on ``on`` (the site's date). Outside its window it is recorded, and a minor
    deviation (category visit window) opens. A visit the sweep marked missed keeps its deviation. ``reason``:
    needed only for a data manager's correction of a DLT-window visit of a closed cohort (the data lock)."""
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
        late = visit.missed_automatically
        visit.status = FollowUpVisit.Status.COMPLETED
        visit.done_on = on
        visit.missed_reason = ""
        visit.missed_automatically = False
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(
            visit,
            by=by,
            reason=f"Visit done on {on}"
            + (" (recorded after it was marked missed)" if late else "")
            + (f". {correction}" if correction else ""),
        ).save()
        visit_reminders_cancel(visit=visit, why=f"visit done on {on}", by=by)
        where = "outside" if visit.out_of_window else "inside"
        if late:
            _missed_visit_recorded(visit, f"Recorded later as done on {on}, {where} its window.", by=by)
        elif visit.out_of_window:
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
        _participant_moves_on(participant, by=by, why=f"Follow-up: {visit.name} done")
    return visit


def visit_miss(*, visit: FollowUpVisit, reason: str, by) -> FollowUpVisit:
    """Record a visit as missed, with the reason: a minor deviation (category visit window) opens, once."""
    if not by.has_perm(CORRECT_LOCKED_DATA):
        require_permission(by, "cohorts.change_followupvisit", "record follow-up visits")
    require_participant_access(by, visit, via="participant")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    with transaction.atomic():
        visit = _lock_visit(visit)
        participant = visit.participant
        confirming = visit.missed_automatically
        audited = data_lock_check(
            participant=participant,
            record=visit,
            by=by,
            reason=reason,
            perm="cohorts.change_followupvisit",
            action="record follow-up visits",
        )
        visit.status = FollowUpVisit.Status.MISSED
        visit.missed_reason = reason
        visit.missed_automatically = False
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(
            visit, by=by, reason=f"Visit missed: {audited}" + (" (confirmed after the sweep)" if confirming else "")
        ).save()
        visit_reminders_cancel(visit=visit, why="visit recorded as missed", by=by)
        if confirming:
            _missed_visit_recorded(visit, f"Missed, confirmed by staff: {reason}", by=by)
        else:
            deviation_open_by_system(
                participant=participant,
                category=ProtocolDeviation.Category.VISIT_WINDOW,
                severity=ProtocolDeviation.Severity.MINOR,
                description=missed_description(visit, why=reason),
                occurred_on=min(visit.window_end, site_today(participant)),
                by=by,
                visit=visit,
                infusion=visit.infusion,
            )
        _participant_moves_on(participant, by=by, why=f"Follow-up: {visit.name} missed")
    return visit
