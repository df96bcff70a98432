"""Finishing an infusion, completed or stopped early, and what follows in the same transaction:
the average drip rate, the dose check, the participant's DLT window, her follow-up visits, and the
cohort to observing after its last infusion."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from cohorts import selectors
from cohorts.models import (
    IMPLAUSIBLE_RATE_FACTOR,
    Cohort,
    FollowUpVisit,
    Infusion,
    Participant,
    ProtocolDeviation,
    VitalSigns,
    average_drip_rate,
    dose_within_tolerance,
)
from cohorts.services.deviations import deviation_open_by_system
from cohorts.services.infusions import clean_vital_signs, lock_infusion, save_vital_signs
from cohorts.services.lifecycle import Transition, cohort_transition, transition_allowed
from cohorts.services.participant_lifecycle import (
    ParticipantTransition,
    participant_transition,
    participant_transition_allowed,
)
from cohorts.services.reminding import hold_reminders_schedule, visit_reminders_schedule
from core.cleaning import (
    clean_cell_count,
    clean_flag,
    clean_moment,
    clean_text,
    clean_volume,
    plain_number,
)
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access
from trial.models import format_cells


def infusion_complete(
    *,
    infusion: Infusion,
    ended_at: datetime,
    cells_administered: int,
    volume_ml: Decimal | str | int,
    vitals_after: Mapping[str, Any] | None = None,
    confirm_implausible_rate: bool = False,
    by,
) -> Infusion:
    """Finish the infusion as given. In the same transaction: the average-rate check (see
    ``_infusion_finish``), the dose check (outside the tolerance: saved, and a major deviation opens),
    the participant's DLT window and status, her follow-up visits, and the cohort to observing when it
    was its last infusion. A completed infusion gave the product: its volume must be more than 0 mL."""
    require_permission(by, "cohorts.change_infusion", "record infusions")
    require_participant_access(by, infusion, via="participant")
    ended_at = clean_moment(ended_at, field="ended_at", label="The end")
    cells = clean_cell_count(cells_administered, field="cells_administered")
    volume = clean_volume(volume_ml)
    if volume == 0:
        raise InvalidInput(
            ErrorCode.VOLUME_NOT_GIVEN,
            "A completed infusion gave the product: the volume given must be more than 0 mL. "
            "If nothing was given, record the infusion as stopped early.",
            {"volume_ml": ["Must be more than 0."]},
        )
    vitals = clean_vital_signs(vitals_after, field="vitals_after")
    confirmed = clean_flag(confirm_implausible_rate, field="confirm_implausible_rate")
    with transaction.atomic():
        cohort, infusion = lock_infusion(infusion)
        if infusion.interruptions.filter(restarted_at__isnull=True).exists():
            raise RuleViolation(
                ErrorCode.INFUSION_INTERRUPTED, "The infusion is interrupted: resume it, or stop it early."
            )
        return _infusion_finish(
            cohort=cohort,
            infusion=infusion,
            status=Infusion.Status.COMPLETED,
            ended_at=ended_at,
            cells=cells,
            volume=volume,
            vitals=vitals,
            reason="",
            confirmed=confirmed,
            by=by,
        )


def infusion_stop_early(
    *,
    infusion: Infusion,
    ended_at: datetime,
    reason: str,
    cells_administered: int,
    volume_ml: Decimal | str | int,
    vitals_after: Mapping[str, Any] | None = None,
    confirm_implausible_rate: bool = False,
    by,
) -> Infusion:
    """Stop the infusion before the product is given in full (e.g. an infusion reaction).

    The participant was exposed: as on completion, her DLT window starts and her visits are planned;
    the average rate is checked when anything was given, and the dose check opens a major deviation
    when what was given is outside the tolerance. 0 mL (stopped before anything ran) is legitimate:
    there is then no average rate.
    """
    require_permission(by, "cohorts.change_infusion", "record infusions")
    require_participant_access(by, infusion, via="participant")
    ended_at = clean_moment(ended_at, field="ended_at", label="The end")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    cells = clean_cell_count(cells_administered, field="cells_administered", allow_zero=True)
    volume = clean_volume(volume_ml)
    vitals = clean_vital_signs(vitals_after, field="vitals_after")
    confirmed = clean_flag(confirm_implausible_rate, field="confirm_implausible_rate")
    with transaction.atomic():
        cohort, infusion = lock_infusion(infusion)
        return _infusion_finish(
            cohort=cohort,
            infusion=infusion,
            status=Infusion.Status.STOPPED_EARLY,
            ended_at=ended_at,
            cells=cells,
            volume=volume,
            vitals=vitals,
            reason=reason,
            confirmed=confirmed,
            by=by,
        )


def _minutes(duration: timedelta) -> str:
    """A running time as a nurse reads it: "80 min", "79.5 min"."""
    minutes = Decimal(duration // timedelta(microseconds=1)) / 60_000_000
    return f"{plain_number(minutes.quantize(Decimal('0.1'), ROUND_HALF_UP))} min"


def _average_rate_check(*, infusion: Infusion, ended_at: datetime, volume: Decimal, confirmed: bool) -> str:
    """The drip rate the infusion averaged, set on ``infusion`` (not saved), with the protocol's range and flag.

    average drops/min = volume given × drop factor ÷ running minutes (end − start − interruptions).
    - Nothing given (0 mL, only possible when stopped early): no average, no flag.
    - Volume given with no running time: refused (``no_running_time``); it cannot be confirmed.
    - Above ``IMPLAUSIBLE_RATE_FACTOR`` × the maximum: refused (``implausible_average_rate``) unless the
      nurse confirms it; confirmed, it is saved, flagged and recorded as confirmed.
    Returns the text for the audit reason ("" when in range or not computed).
    """
    if volume == 0:
        return ""
    low, high = infusion.trial.infusion_rate_min, infusion.trial.infusion_rate_max
    interrupted = infusion.interrupted_for(ended_at)
    running = ended_at - infusion.started_at - interrupted
    rate = average_drip_rate(volume_ml=volume, drop_factor=infusion.drop_factor, running=running)
    stored = Infusion._meta.get_field("average_drops_per_minute")
    if rate is None or rate >= Decimal(10) ** (stored.max_digits - stored.decimal_places):
        # No running time, or so little that the rate is beyond any infusion (and beyond the column).
        raise InvalidInput(
            ErrorCode.NO_RUNNING_TIME,
            f"{plain_number(volume)} mL cannot be given in no running time (end − start, less "
            f"{_minutes(interrupted)} interrupted). Check the end time and the interruptions, or record 0 mL if "
            "nothing was given.",
            {"ended_at": ["No running time."], "volume_ml": ["Given in no time."]},
        )
    how = (
        f"{plain_number(volume)} mL × {infusion.drop_factor} drops/mL ÷ {_minutes(running)} of running time (end − "
        f"start, less {_minutes(interrupted)} interrupted)"
    )
    limit = high * IMPLAUSIBLE_RATE_FACTOR
    implausible = rate > limit
    if implausible and not confirmed:
        raise InvalidInput(
            ErrorCode.IMPLAUSIBLE_AVERAGE_RATE,
            f"The average rate, {plain_number(rate)} drops/min = {how}, is not plausible "
            f"for a drip: it is more than {IMPLAUSIBLE_RATE_FACTOR} × the protocol's maximum of {plain_number(high)} "
            f"drops/min ({plain_number(limit)} drops/min). Check the end time, the interruptions, the volume and the "
            "giving set. If "
            "they are right, confirm the implausible rate (“Confirm an implausible average rate”; in the API "
            "confirm_implausible_rate): it is then saved, flagged, and a major deviation opens.",
            {"confirm_implausible_rate": ["Check the entry, or confirm it."]},
        )
    infusion.average_drops_per_minute = rate
    infusion.average_rate_min, infusion.average_rate_max = low, high
    infusion.average_rate_out_of_range = not (low <= rate <= high)
    infusion.implausible_rate_confirmed = implausible
    if implausible:
        return f"; average rate {plain_number(rate)} drops/min = {how}, confirmed as entered although implausible"
    if infusion.average_rate_out_of_range:
        return f"; average rate {plain_number(rate)} drops/min, outside the protocol"
    return ""


def _average_rate_deviation(*, infusion: Infusion, participant: Participant, by) -> None:
    """An average outside the range opens a deviation, as an out-of-range reading does (``drip_rate_record``):
    category infusion rate, major when faster, minor when slower, linked to the infusion (no reading)."""
    if not infusion.average_rate_out_of_range:
        return
    rate, low, high = infusion.average_drops_per_minute, infusion.average_rate_min, infusion.average_rate_max
    confirmed = (
        (
            f" The nurse confirmed it as entered although it is more than {IMPLAUSIBLE_RATE_FACTOR} × the "
            "maximum (implausible for a drip)."
        )
        if infusion.implausible_rate_confirmed
        else ""
    )
    deviation_open_by_system(
        participant=participant,
        category=ProtocolDeviation.Category.INFUSION_RATE,
        severity=ProtocolDeviation.Severity.MAJOR if rate > high else ProtocolDeviation.Severity.MINOR,
        description=f"Average rate {plain_number(rate)} drops/min ({plain_number(infusion.volume_ml)} mL in "
        f"{_minutes(infusion.duration)} running time "
        f"with a {infusion.drop_factor} drops/mL set; {infusion.average_ml_per_hour or '—'} mL/h) is "
        f"{'faster than' if rate > high else 'slower than'} the protocol's {plain_number(low)}–{plain_number(high)} "
        "drops/min." + confirmed,
        occurred_on=timezone.localdate(infusion.ended_at, timezone=selectors.site_zone(participant)),
        by=by,
        infusion=infusion,
    )


def _infusion_finish(
    *,
    cohort: Cohort,
    infusion: Infusion,
    status: str,
    ended_at: datetime,
    cells: int,
    volume: Decimal,
    vitals: dict[str, Any],
    reason: str,
    confirmed: bool,
    by,
) -> Infusion:
    if infusion.status != Infusion.Status.IN_PROGRESS:
        raise RuleViolation(
            ErrorCode.INFUSION_NOT_IN_PROGRESS, f"The infusion is {infusion.get_status_display().lower()}."
        )
    zone = selectors.site_zone(infusion.participant)
    if ended_at < infusion.started_at:
        raise InvalidInput(
            ErrorCode.END_BEFORE_START,
            f"The infusion cannot end before it started ({selectors.format_site_time(infusion.started_at, zone)}).",
            {"ended_at": ["Before the start."]},
        )
    last_seen = max(
        [
            *infusion.readings.values_list("observed_at", flat=True),
            *(i.restarted_at or i.stopped_at for i in infusion.interruptions.all()),
        ],
        default=None,
    )
    if last_seen is not None and ended_at < last_seen:
        raise InvalidInput(
            ErrorCode.END_BEFORE_START,
            "The infusion cannot end before its last recorded rate or interruption.",
            {"ended_at": ["Before the last record."]},
        )
    rate_note = _average_rate_check(infusion=infusion, ended_at=ended_at, volume=volume, confirmed=confirmed)
    trial, dose = infusion.trial, infusion.dose_level
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site").get(pk=infusion.participant_id)
    )

    infusion.status = status
    infusion.ended_at = ended_at
    infusion.cells_administered = cells
    infusion.volume_ml = volume
    infusion.stop_reason = reason
    what = "completed" if status == Infusion.Status.COMPLETED else f"stopped early: {reason}"
    audit(infusion, by=by, reason=f"Infusion {what}{rate_note}").save()
    if vitals:
        save_vital_signs(infusion=infusion, timepoint=VitalSigns.Timepoint.AFTER, values=vitals, at=ended_at, by=by)
    _average_rate_deviation(infusion=infusion, participant=participant, by=by)

    if not dose_within_tolerance(cells=cells, target=dose.cells, tolerance_pct=trial.dose_tolerance_pct):
        deviation_open_by_system(
            participant=participant,
            category=ProtocolDeviation.Category.DOSE,
            severity=ProtocolDeviation.Severity.MAJOR,
            description=f"{format_cells(cells)} cells given ({cells:,}); the dose level {dose.label} is "
            f"{dose.cells_display} ({dose.cells:,}) ± {trial.dose_tolerance_pct}%."
            + (f" Infusion stopped early: {reason}" if reason else ""),
            occurred_on=timezone.localdate(ended_at, timezone=zone),
            by=by,
            infusion=infusion,
        )

    # DLT window: day 0 is the site's date the infusion started; the window covers days 0..N (inclusive),
    # so with N = 28 the day-28 visit is its last day. A later infusion (if the protocol allows one)
    # extends the window, never shortens it.
    day0 = selectors.infusion_day(infusion, zone)
    participant.dlt_window_start = participant.dlt_window_start or day0
    participant.dlt_window_end = max(participant.dlt_window_end or day0, day0 + timedelta(days=trial.dlt_window_days))
    if participant_transition_allowed(participant, ParticipantTransition.INFUSE):
        participant_transition(
            participant=participant, transition=ParticipantTransition.INFUSE, by=by, reason="", save=False
        )
    audit(
        participant, by=by, reason=f"Infused; DLT window {participant.dlt_window_start} to {participant.dlt_window_end}"
    ).save()

    for definition in trial.visit_schedule.order_by("day_offset", "code"):
        target = day0 + timedelta(days=definition.day_offset)
        visit = FollowUpVisit(
            participant=participant,
            infusion=infusion,
            definition=definition,
            code=definition.code,
            name=definition.name,
            day_offset=definition.day_offset,
            target_date=target,
            window_start=target - timedelta(days=definition.window_before_days),
            window_end=target + timedelta(days=definition.window_after_days),
        )
        audit(visit, by=by, reason="Scheduled from the infusion day").save()
        visit_reminders_schedule(visit=visit, zone=zone, by=by)

    cohort_infusions = list(
        Infusion.objects.filter(cohort=cohort).order_by("started_at", "pk").values_list("pk", flat=True)
    )
    hold_reminders_schedule(
        cohort=cohort,
        infusion=infusion,
        is_first=cohort_infusions[0] == infusion.pk,
        still_to_dose=cohort.capacity - len(cohort_infusions),
        by=by,
    )
    _cohort_observe_if_all_infused(cohort=cohort, by=by)
    return infusion


def _cohort_observe_if_all_infused(*, cohort: Cohort, by) -> None:
    """The last infusion of a full cohort moves it to observing (a paused cohort resumes into observing)."""
    if selectors.cohort_all_infused(cohort) and transition_allowed(cohort, Transition.ALL_INFUSED):
        cohort_transition(
            cohort=cohort,
            transition=Transition.ALL_INFUSED,
            by=by,
            reason="Every participant infused: DLT windows running",
        )
