"""Starting an infusion and recording it at the bedside: drip rates, vital signs, interruptions (rules 4, 5).

Input is checked first (InvalidInput, 400, nothing saved), then the rules under the cohort's row
lock (RuleViolation, 409), then the writes with their audit rows, all in one transaction.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts import selectors
from cohorts.models import (
    VITAL_RANGES,
    Cohort,
    DripRateReading,
    Enrollment,
    Infusion,
    InfusionInterruption,
    Participant,
    ProtocolDeviation,
    VitalSigns,
    dose_within_tolerance,
    ml_per_hour,
)
from cohorts.selectors import current_consent
from cohorts.services.data_lock import data_lock_check
from cohorts.services.deviations import deviation_open_by_system
from cohorts.services.lifecycle import Activity, cohort_refusal
from core.cleaning import (
    clean_cell_count,
    clean_decimal,
    clean_drip_rate,
    clean_drop_factor,
    clean_moment,
    clean_text,
    clean_volume,
    plain_number,
)
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.models import format_cells

VITAL_FIELDS = tuple(VITAL_RANGES)


def clean_vital_signs(values: Mapping[str, Any] | None, *, field: str) -> dict[str, Any]:
    """Plausible vital signs (each optional, at least one); a typing error is refused, not saved."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput(
            ErrorCode.INVALID_VITALS, "Vital signs must be a set of named measures.", {field: ["Invalid."]}
        )
    unknown = sorted(set(values) - {*VITAL_FIELDS, "measured_at"})
    if unknown:
        raise InvalidInput(ErrorCode.INVALID_VITALS, f"Unknown vital signs: {', '.join(unknown)}.", {field: unknown})
    cleaned: dict[str, Any] = {}
    for name, (low, high) in VITAL_RANGES.items():
        raw = values.get(name)
        if raw is None or raw == "":
            continue
        places = 1 if name == "temperature_c" else 0
        number = clean_decimal(
            raw,
            field=f"{field}.{name}",
            label=name.replace("_", " ").capitalize(),
            unit="",
            max_digits=4 if places else 3,
            places=places,
            code=ErrorCode.INVALID_VITALS,
        )
        if not low <= number <= high:
            raise InvalidInput(
                ErrorCode.INVALID_VITALS,
                f"{name.replace('_', ' ').capitalize()} {number} is outside {low}–{high}.",
                {f"{field}.{name}": ["Not plausible."]},
            )
        cleaned[name] = number if places else int(number)
    if not cleaned:
        raise InvalidInput(ErrorCode.INVALID_VITALS, "Give at least one vital sign.", {field: ["Empty."]})
    systolic, diastolic = cleaned.get("systolic_bp"), cleaned.get("diastolic_bp")
    if systolic is not None and diastolic is not None and systolic <= diastolic:
        raise InvalidInput(
            ErrorCode.INVALID_VITALS,
            f"Blood pressure {systolic}/{diastolic}: the systolic must be above the diastolic.",
            {f"{field}.systolic_bp": ["Not above the diastolic."]},
        )
    if values.get("measured_at") is not None:
        cleaned["measured_at"] = clean_moment(values["measured_at"], field=f"{field}.measured_at", label="Measured at")
    return cleaned


def save_vital_signs(*, infusion: Infusion, timepoint: str, values: dict[str, Any], at: datetime, by) -> VitalSigns:
    measured_at = values.pop("measured_at", at)
    vitals = VitalSigns(infusion=infusion, timepoint=timepoint, measured_at=measured_at, recorded_by=by, **values)
    audit(vitals, by=by, reason=f"Vital signs {timepoint} the infusion").save()
    return vitals


def _locked_cohort(pk: int) -> Cohort:
    """The cohort row, locked: two nurses cannot start two infusions of one cohort at once."""
    return Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=pk)


def _lock_participant(pk: int) -> None:
    list(Participant.objects.select_for_update(of=("self",)).filter(pk=pk).values_list("pk", flat=True))


def lock_infusion(infusion: Infusion) -> tuple[Cohort, Infusion]:
    """Lock the participant, the cohort, then the infusion. Every service takes row locks in the order
    participant → cohort → infusion / review (the trial row first when a service needs it), so two
    services can never wait for each other's locks."""
    _lock_participant(infusion.participant_id)
    cohort = _locked_cohort(infusion.cohort_id)
    data_lock_check(participant=None, record=infusion, cohort=cohort)  # a closed cohort's infusions are final
    infusion = (
        Infusion.objects.select_for_update(of=("self",))
        .select_related("trial", "dose_level", "participant__site")
        .get(pk=infusion.pk)
    )
    return cohort, infusion


def infusion_start(
    *,
    participant: Participant,
    by,
    started_at: datetime,
    product_lot: str,
    product_expiry: datetime,
    cells_planned: int | None = None,
    drop_factor: int | None = None,
    volume_ml: Decimal | str | int | None = None,
    premedication: str = "",
    vitals_before: Mapping[str, Any] | None = None,
) -> Infusion:
    """Start the infusion of an enrolled participant, race-free (the cohort row is locked).

    Refuses with ``not_enrolled``, ``cohort_paused``, ``trial_stopped``, ``cohort_not_open``,
    ``already_infused``, ``no_consent``, ``product_expired``, ``dose_mismatch`` (the product's cells are
    outside the tolerance of the cohort's dose level), ``sentinel_hold`` or ``stagger_hold``.
    """
    require_permission(by, "cohorts.add_infusion", "record infusions")
    started_at = clean_moment(started_at, field="started_at", label="The start")
    product_lot = clean_text(product_lot, field="product_lot", label="Product lot", max_length=60, required=True)
    product_expiry = clean_moment(product_expiry, field="product_expiry", label="The product expiry", allow_future=True)
    premedication = clean_text(premedication, field="premedication", label="Premedication", max_length=2000)
    planned_volume = None if volume_ml in (None, "") else clean_volume(volume_ml, field="volume_ml")
    if drop_factor is not None:
        drop_factor = clean_drop_factor(drop_factor)
    if cells_planned is not None:
        cells_planned = clean_cell_count(cells_planned, field="cells_planned")
    vitals = clean_vital_signs(vitals_before, field="vitals_before")

    with transaction.atomic():
        enrollment = Enrollment.objects.filter(participant=participant).first()
        if enrollment is None:
            raise RuleViolation(ErrorCode.NOT_ENROLLED, f"{participant} is not enrolled in a cohort: no infusion.")
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("site", "trial").get(pk=participant.pk)
        )
        cohort = _locked_cohort(enrollment.cohort_id)  # participant first, then cohort (the lock order)
        trial = cohort.trial
        if participant.replaced:
            raise RuleViolation(
                ErrorCode.NOT_ENROLLED, f"{participant} is marked replaced (not evaluable): no infusion."
            )
        if participant.status in (
            Participant.Status.WITHDRAWN,
            Participant.Status.LOST_TO_FOLLOW_UP,
            Participant.Status.COMPLETED,
        ):
            raise RuleViolation(
                ErrorCode.NOT_ENROLLED, f"{participant} is {participant.get_status_display().lower()}: no infusion."
            )
        refusal = cohort_refusal(cohort, Activity.INFUSION)
        if refusal is not None:
            raise refusal
        given = list(participant.infusions.order_by("sequence"))
        if len(given) >= trial.max_infusions_per_participant:
            raise RuleViolation(
                ErrorCode.ALREADY_INFUSED,
                f"{participant} already had {len(given)} infusion(s); the protocol allows "
                f"{trial.max_infusions_per_participant}.",
            )
        if any(i.status == Infusion.Status.IN_PROGRESS for i in given):
            raise RuleViolation(ErrorCode.INFUSION_IN_PROGRESS, f"{participant} has an infusion in progress.")
        zone = selectors.site_zone(participant)
        if started_at < enrollment.enrolled_at:
            raise InvalidInput(
                ErrorCode.STARTED_BEFORE_ENROLLMENT,
                "The infusion cannot start before the enrollment "
                f"({selectors.format_site_time(enrollment.enrolled_at, zone)}).",
                {"started_at": ["Too early."]},
            )
        if current_consent(participant, on=timezone.localdate(started_at, timezone=zone)) is None:
            raise RuleViolation(
                ErrorCode.NO_CONSENT,
                f"{participant} has no current signed consent of the version in force: no infusion.",
            )
        if started_at > product_expiry:
            raise RuleViolation(
                ErrorCode.PRODUCT_EXPIRED,
                f"Product lot {product_lot} expired at "
                f"{selectors.format_site_time(product_expiry, zone)}: it must not be given.",
                {"product_expiry": ["Expired."]},
            )
        dose = cohort.dose_level
        cells_planned = dose.cells if cells_planned is None else cells_planned
        if not dose_within_tolerance(cells=cells_planned, target=dose.cells, tolerance_pct=trial.dose_tolerance_pct):
            raise RuleViolation(
                ErrorCode.DOSE_MISMATCH,
                f"The product holds {format_cells(cells_planned)} cells; cohort {cohort.sequence} "
                f"gives {dose.label} ({dose.cells_display}) ± {trial.dose_tolerance_pct}%.",
                {"cells_planned": ["Does not match the dose level."]},
            )
        hold = selectors.infusion_hold(participant=participant, at=started_at, cohort=cohort)
        if hold is not None:
            raise RuleViolation(hold.code, hold.message, {"started_at": [hold.message]})
        infusion = Infusion(
            trial=trial,
            participant=participant,
            cohort=cohort,
            dose_level=dose,
            sequence=len(given) + 1,
            max_infusions=trial.max_infusions_per_participant,
            status=Infusion.Status.IN_PROGRESS,
            cells_planned=cells_planned,
            product_lot=product_lot,
            product_expiry=product_expiry,
            started_at=started_at,
            volume_planned_ml=planned_volume,
            drop_factor=drop_factor or trial.default_drop_factor,
            premedication=premedication,
            administered_by=by,
        )
        try:
            with transaction.atomic():
                audit(infusion, by=by, reason=f"Infusion started (lot {product_lot})").save()
        except IntegrityError:
            raise RuleViolation(
                ErrorCode.STAGGER_HOLD, f"Another infusion of cohort {cohort.sequence} is in progress."
            ) from None
        if vitals:
            save_vital_signs(
                infusion=infusion, timepoint=VitalSigns.Timepoint.BEFORE, values=vitals, at=started_at, by=by
            )
    return infusion


def drip_rate_record(*, infusion: Infusion, observed_at: datetime, drops_per_minute, by) -> DripRateReading:
    """Record a drip rate as observed. Outside [min, max] it is saved, flagged, and a deviation opens
    (category infusion rate, linked to the reading): major when faster than the maximum (the safety
    direction for a cell product), minor when slower. A rate that is not a positive number is refused."""
    require_permission(by, "cohorts.add_dripratereading", "record drip rates")
    rate = clean_drip_rate(drops_per_minute)
    observed_at = clean_moment(observed_at, field="observed_at", label="The observation time")
    with transaction.atomic():
        _, infusion = lock_infusion(infusion)
        if infusion.status == Infusion.Status.PLANNED:
            raise RuleViolation(ErrorCode.INFUSION_NOT_IN_PROGRESS, "This infusion has not started.")
        if observed_at < infusion.started_at or (infusion.ended_at and observed_at > infusion.ended_at):
            raise InvalidInput(
                ErrorCode.OBSERVED_OUTSIDE_INFUSION,
                "The rate must be observed between the start and the end of the infusion.",
                {"observed_at": ["Outside the infusion."]},
            )
        trial = infusion.trial
        low, high = trial.infusion_rate_min, trial.infusion_rate_max
        reading = DripRateReading(
            infusion=infusion,
            observed_at=observed_at,
            drops_per_minute=rate,
            rate_min=low,
            rate_max=high,
            out_of_range=not (low <= rate <= high),
            recorded_by=by,
        )
        audit(
            reading, by=by, reason="Drip rate observed" + (" (outside the protocol)" if reading.out_of_range else "")
        ).save()
        if reading.out_of_range:
            zone = selectors.site_zone(infusion.participant)
            direction = "faster than" if rate > high else "slower than"
            deviation_open_by_system(
                participant=infusion.participant,
                category=ProtocolDeviation.Category.INFUSION_RATE,
                severity=ProtocolDeviation.Severity.MAJOR if rate > high else ProtocolDeviation.Severity.MINOR,
                description=f"Drip rate {plain_number(rate)} drops/min ({ml_per_hour(rate, infusion.drop_factor)} mL/h "
                f"with a {infusion.drop_factor} drops/mL set) at {selectors.format_site_time(observed_at, zone)} is "
                f"{direction} the protocol's {plain_number(low)}–{plain_number(high)} drops/min.",
                occurred_on=timezone.localdate(observed_at, timezone=zone),
                by=by,
                infusion=infusion,
                drip_rate_reading=reading,
            )
    return reading


def vital_signs_record(
    *, infusion: Infusion, timepoint: str, values: Mapping[str, Any], by, measured_at: datetime | None = None
) -> VitalSigns:
    require_permission(by, "cohorts.add_vitalsigns", "record vital signs")
    if timepoint not in VitalSigns.Timepoint.values:
        raise InvalidInput(ErrorCode.INVALID_VITALS, f"Unknown time point {timepoint!r}.", {"timepoint": ["Invalid."]})
    vitals = clean_vital_signs(values, field="vitals")
    measured_at = clean_moment(
        measured_at or vitals.get("measured_at") or timezone.now(), field="measured_at", label="Measured at"
    )
    vitals.pop("measured_at", None)
    with transaction.atomic():
        _, infusion = lock_infusion(infusion)
        return save_vital_signs(infusion=infusion, timepoint=timepoint, values=vitals, at=measured_at, by=by)


def infusion_interrupt(*, infusion: Infusion, stopped_at: datetime, reason: str, by) -> InfusionInterruption:
    require_permission(by, "cohorts.add_infusioninterruption", "record infusion interruptions")
    stopped_at = clean_moment(stopped_at, field="stopped_at", label="The interruption")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    with transaction.atomic():
        _, infusion = lock_infusion(infusion)
        if infusion.status != Infusion.Status.IN_PROGRESS:
            raise RuleViolation(
                ErrorCode.INFUSION_NOT_IN_PROGRESS, f"The infusion is {infusion.get_status_display().lower()}."
            )
        interruptions = list(infusion.interruptions.all())
        if any(i.restarted_at is None for i in interruptions):
            raise RuleViolation(ErrorCode.INFUSION_INTERRUPTED, "The infusion is already interrupted: resume it first.")
        earliest = max([infusion.started_at, *(i.restarted_at for i in interruptions)])
        if stopped_at < earliest:
            raise InvalidInput(
                ErrorCode.END_BEFORE_START,
                "The interruption cannot precede the start or the last restart.",
                {"stopped_at": ["Too early."]},
            )
        interruption = InfusionInterruption(infusion=infusion, stopped_at=stopped_at, reason=reason, recorded_by=by)
        audit(interruption, by=by, reason=f"Infusion interrupted: {reason}").save()
    return interruption


def infusion_resume(*, infusion: Infusion, restarted_at: datetime, by) -> InfusionInterruption:
    require_permission(by, "cohorts.change_infusioninterruption", "record infusion restarts")
    restarted_at = clean_moment(restarted_at, field="restarted_at", label="The restart")
    with transaction.atomic():
        _, infusion = lock_infusion(infusion)
        interruption = infusion.interruptions.select_for_update().filter(restarted_at__isnull=True).first()
        if infusion.status != Infusion.Status.IN_PROGRESS or interruption is None:
            raise RuleViolation(ErrorCode.NOT_INTERRUPTED, "The infusion is not interrupted.")
        if restarted_at < interruption.stopped_at:
            raise InvalidInput(
                ErrorCode.END_BEFORE_START,
                "The restart cannot precede the interruption.",
                {"restarted_at": ["Before the interruption."]},
            )
        interruption.restarted_at = restarted_at
        audit(interruption, by=by, reason="Infusion restarted").save()
    return interruption
