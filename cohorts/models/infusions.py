"""Infusions with their drip-rate readings, interruptions and vital signs (DESIGN rules 4 and 5)."""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cohorts.models.cohort import Cohort
from cohorts.models.participants import Participant
from core.history import audited_history
from trial.models import DoseLevel, Trial, format_cells

ML_PER_HOUR_QUANTUM = Decimal("0.1")
# drops/min. Far finer than what is measured: a minute's error in the end of an 80-minute infusion is 1.25 %.
AVERAGE_RATE_QUANTUM = Decimal("0.1")
# An average above this multiple of the protocol's maximum drip rate (250 drops/min = 750 mL/h for 20–25 drops/min
# with a 20 drops/mL set) is not a drip: the drops run into a stream. It is nearly always an entry error (the end
# time, an interruption, the volume or the giving set), so it is refused until the nurse confirms it; confirmed, it
# is saved, flagged and opens a major deviation. The CHECK ``infusion_implausible_rate_confirmed`` uses it too:
# changing it needs a migration.
IMPLAUSIBLE_RATE_FACTOR = 10


def ml_per_hour(drops_per_minute: Decimal, drop_factor: int) -> Decimal:
    """mL/h from an observed drip rate and the giving set's drop factor (drops/mL), to 0.1 mL/h."""
    return (Decimal(drops_per_minute) * 60 / Decimal(drop_factor)).quantize(ML_PER_HOUR_QUANTUM, ROUND_HALF_UP)


def average_drip_rate(*, volume_ml: Decimal, drop_factor: int, running: timedelta) -> Decimal | None:
    """The drip rate the infusion averaged: volume × drop factor ÷ running minutes, to 0.1 drops/min (half up).

    None when it has no meaning: nothing given (0 mL) or no running time. The protocol range is compared
    with this rounded value, so the flag always agrees with the number shown (and the CHECK).
    """
    seconds = Decimal(running // timedelta(microseconds=1)) / 1_000_000
    if volume_ml <= 0 or seconds <= 0:
        return None
    return (Decimal(volume_ml) * drop_factor * 60 / seconds).quantize(AVERAGE_RATE_QUANTUM, ROUND_HALF_UP)


def dose_within_tolerance(*, cells: int, target: int, tolerance_pct: Decimal) -> bool:
    """|cells − target| ≤ tolerance % of target, in exact arithmetic (cell counts are integers)."""
    return abs(Decimal(cells) - Decimal(target)) * 100 <= Decimal(target) * Decimal(tolerance_pct)


class Infusion(models.Model):
    """One IV infusion of the product to one participant, at the cohort's dose level.

    Started, observed (drip-rate readings, vital signs, interruptions) and finished only through
    ``cohorts.services``. The database holds what a race or a bypass could break: one infusion in
    progress per cohort, at most ``max_infusions`` per participant (copied from the trial so a CHECK
    can hold it), a positive drop factor, an end not before the start, non-negative volumes.
    """

    free_text_fields = ("stop_reason",)

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        STOPPED_EARLY = "stopped_early", "Stopped early"

    FINISHED = (Status.COMPLETED, Status.STOPPED_EARLY)

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="infusions")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="infusions")
    cohort = models.ForeignKey(Cohort, on_delete=models.PROTECT, related_name="infusions")
    dose_level = models.ForeignKey(DoseLevel, on_delete=models.PROTECT, related_name="infusions")
    sequence = models.PositiveSmallIntegerField(default=1, help_text="1 for the participant's first infusion.")
    max_infusions = models.PositiveSmallIntegerField(
        help_text="The trial's infusions per participant when this one started (CHECK sequence)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED, editable=False)
    cells_planned = models.PositiveBigIntegerField(help_text="Exact number of cells in the product to give.")
    cells_administered = models.PositiveBigIntegerField(null=True, blank=True, help_text="Exact number given.")
    product_lot = models.CharField(max_length=60)
    product_expiry = models.DateTimeField(help_text="The product may not be started after this moment.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    volume_planned_ml = models.DecimalField(
        "volume to give (mL)", max_digits=7, decimal_places=1, null=True, blank=True
    )
    volume_ml = models.DecimalField("volume given (mL)", max_digits=7, decimal_places=1, null=True, blank=True)
    drop_factor = models.PositiveSmallIntegerField("giving-set drop factor (drops/mL)")
    premedication = models.TextField(blank=True)
    stop_reason = models.TextField("reason stopped early", blank=True)
    # Set when the infusion finishes (``average_drip_rate``): the rate it averaged, with the protocol's range
    # copied so the flag stays explainable if the protocol changes (as on a drip-rate reading).
    average_drops_per_minute = models.DecimalField(
        "average rate (drops/min)",
        max_digits=12,
        decimal_places=1,
        null=True,
        blank=True,
        editable=False,
        help_text="Volume given × drop factor ÷ running minutes (interruptions excluded).",
    )
    average_rate_min = models.DecimalField(
        "protocol minimum (drops/min)", max_digits=6, decimal_places=2, null=True, blank=True, editable=False
    )
    average_rate_max = models.DecimalField(
        "protocol maximum (drops/min)", max_digits=6, decimal_places=2, null=True, blank=True, editable=False
    )
    average_rate_out_of_range = models.BooleanField("average rate outside the protocol", default=False, editable=False)
    implausible_rate_confirmed = models.BooleanField(
        "implausible average confirmed",
        default=False,
        editable=False,
        help_text=f"The nurse confirmed an average above {IMPLAUSIBLE_RATE_FACTOR} × the protocol maximum as entered.",
    )
    administered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["cohort", "started_at"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "sequence"], name="infusion_unique_sequence"),
            models.CheckConstraint(
                condition=Q(sequence__gte=1) & Q(sequence__lte=F("max_infusions")),
                name="infusion_sequence_within_max",
            ),
            models.UniqueConstraint(
                fields=["cohort"], condition=Q(status="in_progress"), name="infusion_one_in_progress_per_cohort"
            ),
            models.CheckConstraint(condition=Q(cells_planned__gte=1), name="infusion_cells_planned_positive"),
            models.CheckConstraint(condition=Q(drop_factor__gte=1), name="infusion_drop_factor_positive"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="infusion_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(volume_ml__isnull=True) | Q(volume_ml__gte=0), name="infusion_volume_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(volume_planned_ml__isnull=True) | Q(volume_planned_ml__gte=0),
                name="infusion_planned_volume_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["completed", "stopped_early"])
                | (Q(ended_at__isnull=False) & Q(cells_administered__isnull=False) & Q(volume_ml__isnull=False)),
                name="infusion_finished_has_end_cells_volume",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["planned", "in_progress"]) | Q(ended_at__isnull=True),
                name="infusion_running_has_no_end",
            ),
            models.CheckConstraint(
                condition=~Q(status="stopped_early") | ~Q(stop_reason=""), name="infusion_stopped_early_has_reason"
            ),
            # The average rate (DESIGN rule 5), as for readings. Every branch names its non-NULL columns: a CHECK
            # whose condition is NULL passes.
            models.CheckConstraint(
                condition=Q(average_drops_per_minute__isnull=True) | Q(status__in=["completed", "stopped_early"]),
                name="infusion_average_only_when_finished",
            ),
            models.CheckConstraint(
                condition=Q(average_drops_per_minute__isnull=True) | Q(average_drops_per_minute__gt=0),
                name="infusion_average_rate_positive",
            ),
            models.CheckConstraint(
                condition=Q(average_rate_min__isnull=True, average_rate_max__isnull=True)
                | Q(
                    average_rate_min__isnull=False,
                    average_rate_max__isnull=False,
                    average_rate_max__gte=F("average_rate_min"),
                ),
                name="infusion_average_range_ordered",
            ),
            models.CheckConstraint(
                condition=Q(
                    average_drops_per_minute__isnull=True,
                    average_rate_min__isnull=True,
                    average_rate_max__isnull=True,
                    average_rate_out_of_range=False,
                )
                | (
                    Q(
                        average_drops_per_minute__isnull=False,
                        average_rate_min__isnull=False,
                        average_rate_max__isnull=False,
                    )
                    & (
                        (
                            Q(average_rate_out_of_range=True)
                            & (
                                Q(average_drops_per_minute__lt=F("average_rate_min"))
                                | Q(average_drops_per_minute__gt=F("average_rate_max"))
                            )
                        )
                        | Q(
                            average_rate_out_of_range=False,
                            average_drops_per_minute__gte=F("average_rate_min"),
                            average_drops_per_minute__lte=F("average_rate_max"),
                        )
                    )
                ),
                name="infusion_average_flag_matches_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    implausible_rate_confirmed=True,
                    average_drops_per_minute__isnull=False,
                    average_rate_max__isnull=False,
                    average_drops_per_minute__gt=F("average_rate_max") * IMPLAUSIBLE_RATE_FACTOR,
                )
                | Q(implausible_rate_confirmed=False, average_drops_per_minute__isnull=True)
                | Q(
                    implausible_rate_confirmed=False,
                    average_rate_max__isnull=False,
                    average_drops_per_minute__lte=F("average_rate_max") * IMPLAUSIBLE_RATE_FACTOR,
                ),
                name="infusion_implausible_rate_confirmed",
                violation_error_message="An average above the implausible limit is saved only when confirmed.",
            ),
        ]

    def __str__(self) -> str:
        return f"Infusion of {self.participant} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def cells_planned_display(self) -> str:
        return format_cells(self.cells_planned)

    @property
    def cells_administered_display(self) -> str:
        return "" if self.cells_administered is None else format_cells(self.cells_administered)

    def interrupted_for(self, ended_at: datetime) -> timedelta:
        """Time spent interrupted up to ``ended_at`` (an interruption not restarted lasts until then)."""
        return sum(((i.restarted_at or ended_at) - i.stopped_at for i in self.interruptions.all()), start=timedelta(0))

    @property
    def duration(self):
        """Time the product ran: end − start minus interruptions (an open one lasts until the end)."""
        if self.ended_at is None:
            return None
        return self.ended_at - self.started_at - self.interrupted_for(self.ended_at)

    @property
    def duration_minutes(self) -> Decimal | None:
        duration = self.duration
        return None if duration is None else Decimal(int(duration.total_seconds())) / 60

    @property
    def average_ml_per_hour(self) -> Decimal | None:
        """Volume given over the running time: the rate actually achieved."""
        minutes = self.duration_minutes
        if not minutes or self.volume_ml is None:
            return None
        return (self.volume_ml * 60 / minutes).quantize(ML_PER_HOUR_QUANTUM, ROUND_HALF_UP)


class DripRateReading(models.Model):
    """A drip rate as observed at the bedside (drops/min). mL/h is derived from the drop factor.

    The protocol range is copied onto the reading so the flag stays explainable if the protocol
    changes, and a CHECK keeps the flag equal to "outside [rate_min, rate_max]".
    """

    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, related_name="readings")
    observed_at = models.DateTimeField()
    drops_per_minute = models.DecimalField(max_digits=6, decimal_places=2)
    rate_min = models.DecimalField("protocol minimum (drops/min)", max_digits=6, decimal_places=2, editable=False)
    rate_max = models.DecimalField("protocol maximum (drops/min)", max_digits=6, decimal_places=2, editable=False)
    out_of_range = models.BooleanField(default=False, editable=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["infusion", "observed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(drops_per_minute__gt=0),
                name="reading_rate_positive",
                violation_error_message="The drip rate must be a positive number of drops/min.",
            ),
            models.CheckConstraint(condition=Q(rate_max__gte=F("rate_min")), name="reading_range_ordered"),
            models.CheckConstraint(
                condition=(
                    Q(out_of_range=True)
                    & (Q(drops_per_minute__lt=F("rate_min")) | Q(drops_per_minute__gt=F("rate_max")))
                )
                | Q(out_of_range=False, drops_per_minute__gte=F("rate_min"), drops_per_minute__lte=F("rate_max")),
                name="reading_flag_matches_range",
            ),
        ]

    def __str__(self) -> str:
        flag = " (outside the protocol)" if self.out_of_range else ""
        return f"{self.drops_per_minute} drops/min at {self.observed_at:%Y-%m-%d %H:%M}{flag}"

    @property
    def ml_per_hour(self) -> Decimal:
        return ml_per_hour(self.drops_per_minute, self.infusion.drop_factor)


class InfusionInterruption(models.Model):
    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, related_name="interruptions")
    stopped_at = models.DateTimeField()
    restarted_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    history = audited_history()

    class Meta:
        ordering = ["infusion", "stopped_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(restarted_at__isnull=True) | Q(restarted_at__gte=F("stopped_at")),
                name="interruption_restart_after_stop",
                violation_error_message="The restart cannot precede the interruption.",
            ),
            models.UniqueConstraint(
                fields=["infusion"], condition=Q(restarted_at__isnull=True), name="interruption_one_open_per_infusion"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="interruption_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Interrupted at {self.stopped_at:%Y-%m-%d %H:%M}: {self.reason[:60]}"


VITAL_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    # Physiologically possible values: anything outside is a typing error, refused before saving.
    "systolic_bp": (Decimal(40), Decimal(300)),
    "diastolic_bp": (Decimal(20), Decimal(200)),
    "heart_rate": (Decimal(20), Decimal(300)),
    "temperature_c": (Decimal("30.0"), Decimal("45.0")),
    "spo2_pct": (Decimal(50), Decimal(100)),
    "respiratory_rate": (Decimal(4), Decimal(80)),
}


class VitalSigns(models.Model):
    class Timepoint(models.TextChoices):
        BEFORE = "before", "Before the infusion"
        DURING = "during", "During the infusion"
        AFTER = "after", "After the infusion"

    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, related_name="vitals")
    timepoint = models.CharField(max_length=8, choices=Timepoint.choices)
    measured_at = models.DateTimeField()
    systolic_bp = models.PositiveSmallIntegerField("systolic BP (mmHg)", null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField("diastolic BP (mmHg)", null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField("heart rate (/min)", null=True, blank=True)
    temperature_c = models.DecimalField("temperature (°C)", max_digits=3, decimal_places=1, null=True, blank=True)
    spo2_pct = models.PositiveSmallIntegerField("SpO₂ (%)", null=True, blank=True)
    respiratory_rate = models.PositiveSmallIntegerField("respiratory rate (/min)", null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    history = audited_history()

    class Meta:
        ordering = ["infusion", "measured_at"]
        verbose_name_plural = "vital signs"
        constraints = [
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": low, f"{name}__lte": high}),
                    name=f"vitals_{name}_plausible",
                    violation_error_message=f"{name.replace('_', ' ').capitalize()} must be from {low} to {high}.",
                )
                for name, (low, high) in VITAL_RANGES.items()
            ),
            models.CheckConstraint(
                condition=Q(systolic_bp__isnull=True)
                | Q(diastolic_bp__isnull=True)
                | Q(systolic_bp__gt=F("diastolic_bp")),
                name="vitals_systolic_above_diastolic",
                violation_error_message="The systolic blood pressure must be above the diastolic.",
            ),
            models.CheckConstraint(
                condition=Q(systolic_bp__isnull=False)
                | Q(diastolic_bp__isnull=False)
                | Q(heart_rate__isnull=False)
                | Q(temperature_c__isnull=False)
                | Q(spo2_pct__isnull=False)
                | Q(respiratory_rate__isnull=False),
                name="vitals_at_least_one_measure",
                violation_error_message="Give at least one vital sign.",
            ),
        ]

    def __str__(self) -> str:
        bp = f"{self.systolic_bp}/{self.diastolic_bp}" if self.systolic_bp else "—"
        return f"{self.get_timepoint_display()}: BP {bp}, HR {self.heart_rate or '—'}"
