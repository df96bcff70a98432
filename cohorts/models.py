"""Participants, screening, consent, cohorts and enrollment.

States change only in ``cohorts.services``. The database holds the invariants a race could break:
one active cohort per trial, one enrollment per participant, slot numbers unique per cohort and
within 1..capacity (the capacity is copied onto the enrollment so a CHECK can hold it), one
sentinel per cohort.
"""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.history import audited_history
from trial.models import DoseLevel, Site, Trial, VisitDefinition, format_cells


class ConsentDocument(models.Model):
    """A version of the informed-consent form, in force from ``effective_from`` to ``effective_to``."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=40)
    title = models.CharField(max_length=200, blank=True)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty while current.")

    history = audited_history()

    class Meta:
        ordering = ["trial", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "version"], name="consent_document_unique_version"),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gte=F("effective_from")),
                name="consent_document_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Consent v{self.version} (from {self.effective_from})"


class Participant(models.Model):
    class Status(models.TextChoices):
        SCREENING = "screening", "Screening"
        SCREEN_FAILED = "screen_failed", "Screen failed"
        ELIGIBLE = "eligible", "Eligible"
        ENROLLED = "enrolled", "Enrolled"
        INFUSED = "infused", "Infused"
        IN_FOLLOW_UP = "in_follow_up", "In follow-up"
        COMPLETED = "completed", "Completed"
        WITHDRAWN = "withdrawn", "Withdrawn"
        LOST_TO_FOLLOW_UP = "lost_to_follow_up", "Lost to follow-up"

    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        UNKNOWN = "U", "Unknown"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="participants")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    screening_number = models.CharField(max_length=32)
    study_id = models.CharField("study ID", max_length=32, null=True, blank=True, help_text="Given at enrollment.")  # noqa: DJ001 - NULL until enrolled; unique among non-NULL
    # Direct identifiers: staff only, never in sponsor views.
    initials = models.CharField(max_length=8, blank=True)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=1, choices=Sex.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCREENING)
    withdrawn_on = models.DateField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    replaced = models.BooleanField(default=False, help_text="Not evaluable for DLT; a replacement slot was opened.")
    replacement_reason = models.TextField(blank=True)
    # Set in the transaction that completes the infusion: day 0 is the infusion day (site time zone).
    dlt_window_start = models.DateField("DLT window from", null=True, blank=True, editable=False)
    dlt_window_end = models.DateField("DLT window to (inclusive)", null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["trial", "screening_number"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "screening_number"], name="participant_unique_screening_no"),
            models.UniqueConstraint(fields=["trial", "study_id"], name="participant_unique_study_id"),
            models.CheckConstraint(
                condition=~Q(status="withdrawn") | Q(withdrawn_on__isnull=False),
                name="participant_withdrawn_has_date",
            ),
            models.CheckConstraint(
                condition=Q(dlt_window_start__isnull=True, dlt_window_end__isnull=True)
                | Q(dlt_window_end__gte=F("dlt_window_start")),
                name="participant_dlt_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.study_id or f"Screening {self.screening_number}"


class ScreeningRecord(models.Model):
    """What the eligibility criteria need, as measured at screening. Empty = not recorded."""

    class Verdict(models.TextChoices):
        INCOMPLETE = "incomplete", "Data missing"
        PENDING_JUDGMENT = "pending_judgment", "Investigator judgment pending"
        ELIGIBLE = "eligible", "Eligible"
        NOT_ELIGIBLE = "not_eligible", "Not eligible"

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="screening")
    screening_date = models.DateField()
    years_since_last_menses = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    natural_menopause = models.BooleanField(null=True, blank=True, help_text="Primary (not induced) menopause")
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    height_cm = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    fracture_history_taken = models.BooleanField(default=False, help_text="Tick once fractures (or none) are listed")
    multiple_site_fracture_history = models.BooleanField(null=True, blank=True)
    t_score_lumbar_l1_l4 = models.DecimalField("T-score L1–L4", max_digits=3, decimal_places=1, null=True, blank=True)
    t_score_total_hip = models.DecimalField("T-score total hip", max_digits=3, decimal_places=1, null=True, blank=True)
    t_score_femoral_neck = models.DecimalField(
        "T-score femoral neck", max_digits=3, decimal_places=1, null=True, blank=True
    )
    measurable_lumbar_vertebrae = models.PositiveSmallIntegerField(null=True, blank=True)
    dxa_impeded = models.BooleanField("body size impedes DXA", null=True, blank=True)
    frax_major_pct = models.DecimalField("FRAX major osteoporotic (%)", max_digits=4, decimal_places=1,
                                         null=True, blank=True)  # fmt: skip
    frax_hip_pct = models.DecimalField("FRAX hip (%)", max_digits=4, decimal_places=1, null=True, blank=True)
    high_fall_risk = models.BooleanField(null=True, blank=True)
    glucocorticoid_dose_mg_per_day = models.DecimalField(
        "glucocorticoid dose (prednisolone mg/day)", max_digits=5, decimal_places=1, null=True, blank=True
    )
    glucocorticoid_duration_months = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    ast_x_uln = models.DecimalField("AST (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    alt_x_uln = models.DecimalField("ALT (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    alp_x_uln = models.DecimalField("ALP (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    bilirubin_x_uln = models.DecimalField("total bilirubin (×ULN)", max_digits=5, decimal_places=2,
                                          null=True, blank=True)  # fmt: skip
    egfr = models.DecimalField("eGFR (mL/min/1.73 m²)", max_digits=5, decimal_places=1, null=True, blank=True)
    tsh = models.DecimalField("TSH (μIU/mL)", max_digits=6, decimal_places=3, null=True, blank=True)
    tsh_lower_limit = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    tsh_upper_limit = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    t4_in_range = models.BooleanField("T4 in range", null=True, blank=True)
    hbv_dna_cps_per_ml = models.DecimalField("HBV-DNA (cps/mL)", max_digits=12, decimal_places=0,
                                             null=True, blank=True)  # fmt: skip
    hbv_dna_uln = models.DecimalField("HBV-DNA ULN (cps/mL)", max_digits=12, decimal_places=0, null=True, blank=True)
    hcv_antibody_positive = models.BooleanField(null=True, blank=True)
    hcv_rna_above_uln = models.BooleanField(null=True, blank=True)
    syphilis_antibody_positive = models.BooleanField(null=True, blank=True)
    hiv_antibody_positive = models.BooleanField(null=True, blank=True)
    bone_treatment_history_taken = models.BooleanField(default=False, help_text="Tick once prior treatments are asked")
    last_pth_analog_date = models.DateField(null=True, blank=True)
    last_rankl_inhibitor_date = models.DateField(null=True, blank=True)
    oral_bisphosphonate_cumulative_months = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    last_oral_bisphosphonate_date = models.DateField(null=True, blank=True)
    last_iv_bisphosphonate_date = models.DateField(null=True, blank=True)
    prior_cell_therapy = models.BooleanField(null=True, blank=True)
    transplant_or_radiation = models.BooleanField(null=True, blank=True)
    other_trial_history_taken = models.BooleanField(default=False)
    last_other_trial_date = models.DateField(null=True, blank=True)

    verdict = models.CharField(max_length=20, choices=Verdict.choices, default=Verdict.INCOMPLETE, editable=False)
    evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = audited_history()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(weight_kg__isnull=True) | Q(weight_kg__gt=0), name="screening_weight_pos"
            ),
            models.CheckConstraint(
                condition=Q(height_cm__isnull=True) | Q(height_cm__gt=0), name="screening_height_pos"
            ),
        ]

    def __str__(self) -> str:
        return f"Screening of {self.participant} on {self.screening_date}"


class Fracture(models.Model):
    screening = models.ForeignKey(ScreeningRecord, on_delete=models.CASCADE, related_name="fractures")
    date = models.DateField()
    site = models.CharField(max_length=80)
    on_anti_osteoporosis_treatment = models.BooleanField(default=False)
    fragility = models.BooleanField(default=True)

    history = audited_history()

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.site} fracture on {self.date}"


class CriterionAssessment(models.Model):
    """The latest verdict per criterion (what SDTM IE needs for screen failures)."""

    class Verdict(models.TextChoices):
        MET = "met", "Met"
        NOT_MET = "not_met", "Not met"
        NEEDS_JUDGMENT = "needs_judgment", "Needs investigator judgment"
        MISSING = "missing", "Data missing"

    screening = models.ForeignKey(ScreeningRecord, on_delete=models.CASCADE, related_name="assessments")
    code = models.CharField(max_length=16)
    kind = models.CharField(max_length=10)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason = models.TextField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["screening", "order"]
        constraints = [models.UniqueConstraint(fields=["screening", "code"], name="assessment_unique_code")]

    def __str__(self) -> str:
        return f"{self.code}: {self.get_verdict_display()}"


class JudgmentConfirmation(models.Model):
    """An investigator's answer for a criterion that needs judgment, with who and when."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="judgments")
    code = models.CharField(max_length=16)
    satisfied = models.BooleanField(help_text="True: the participant satisfies this criterion.")
    note = models.TextField(blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField()

    history = audited_history()

    class Meta:
        ordering = ["participant", "code"]
        constraints = [models.UniqueConstraint(fields=["participant", "code"], name="judgment_unique_code")]

    def __str__(self) -> str:
        return f"{self.code}: {'satisfied' if self.satisfied else 'not satisfied'}"


class GilbertSyndromeDiagnosis(models.Model):
    """An investigator's documented diagnosis of Gilbert's syndrome, with who and when (E14).

    E14 excludes hepatic insufficiency "(excluding Gilbert's syndrome …)". Where the protocol's E14 has
    ``gilbert_waives_bilirubin``, a documented diagnosis waives its bilirubin limit, never the AST, ALT or
    ALP limits. Recorded and revised only by ``cohorts.services.gilbert_diagnosis_record`` (investigators).
    """

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="gilbert_diagnosis")
    documented = models.BooleanField(
        "Gilbert's syndrome documented", help_text="Ticked: the bilirubin limit of E14 is waived (not AST, ALT, ALP)."
    )
    note = models.TextField(help_text="What the diagnosis rests on (e.g. history, unconjugated bilirubin, genotype).")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    history = audited_history()

    class Meta:
        verbose_name = "Gilbert's syndrome diagnosis"
        constraints = [models.CheckConstraint(condition=~Q(note=""), name="gilbert_has_note")]

    def __str__(self) -> str:
        return f"Gilbert's syndrome {'documented' if self.documented else 'not documented'}: {self.participant}"


class ConsentRecord(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records")
    signed_at = models.DateTimeField()
    obtained_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    witness_name = models.CharField(max_length=120, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    history = audited_history()

    class Meta:
        ordering = ["participant", "-signed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gte=F("signed_at")),
                name="consent_withdrawn_after_signed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} consent v{self.document.version}"


ACTIVE_COHORT_STATES = ("open", "full", "observing", "in_review", "paused")


class Cohort(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        OPEN = "open", "Open for enrollment"
        FULL = "full", "Full (infusing)"
        OBSERVING = "observing", "Observing (DLT windows running)"
        IN_REVIEW = "in_review", "In safety review"
        CLOSED = "closed", "Closed"
        PAUSED = "paused", "Paused"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="cohorts")
    dose_level = models.ForeignKey(DoseLevel, on_delete=models.PROTECT, related_name="cohorts")
    sequence = models.PositiveSmallIntegerField()
    capacity = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.PLANNED, editable=False)
    state_before_pause = models.CharField(max_length=12, choices=State.choices, blank=True, editable=False)
    opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+", editable=False)  # fmt: skip
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision = models.CharField(max_length=40, blank=True, editable=False, help_text="The review's decision")

    history = audited_history()

    class Meta:
        ordering = ["trial", "sequence"]
        permissions = [("open_first_cohort", "Can open the first cohort of a trial")]
        constraints = [
            models.UniqueConstraint(fields=["trial", "sequence"], name="cohort_unique_sequence"),
            models.UniqueConstraint(
                fields=["trial"], condition=Q(state__in=ACTIVE_COHORT_STATES), name="cohort_one_active_per_trial"
            ),
            models.UniqueConstraint(fields=["trial"], condition=Q(state="open"), name="cohort_one_open_per_trial"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="cohort_capacity_positive"),
            # A paused cohort remembers the state to resume to; no other cohort carries one.
            models.CheckConstraint(
                condition=(Q(state="paused") & ~Q(state_before_pause="") & ~Q(state_before_pause="paused"))
                | (~Q(state="paused") & Q(state_before_pause="")),
                name="cohort_pause_remembers_state",
            ),
            models.CheckConstraint(
                condition=~Q(state="closed") | Q(closed_at__isnull=False), name="cohort_closed_has_time"
            ),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="cohort_sequence_positive"),
        ]

    def __str__(self) -> str:
        return f"Cohort {self.sequence} — {self.dose_level.label} ({self.dose_level.cells_display})"


class Enrollment(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="enrollments")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="enrollments")
    cohort = models.ForeignKey(Cohort, on_delete=models.PROTECT, related_name="enrollments")
    slot = models.PositiveSmallIntegerField()
    cohort_capacity = models.PositiveSmallIntegerField(help_text="The cohort's capacity when enrolled (CHECK slot).")
    is_sentinel = models.BooleanField(default=False)
    enrolled_at = models.DateTimeField()
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    history = audited_history()

    class Meta:
        ordering = ["cohort", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "participant"], name="enrollment_one_per_participant"),
            models.UniqueConstraint(fields=["cohort", "slot"], name="enrollment_unique_slot"),
            models.UniqueConstraint(fields=["cohort"], condition=Q(is_sentinel=True), name="enrollment_one_sentinel"),
            models.CheckConstraint(condition=~Q(is_sentinel=True) | Q(slot=1), name="enrollment_sentinel_is_slot_1"),
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=F("cohort_capacity")), name="enrollment_slot_within_capacity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} in cohort {self.cohort.sequence}, slot {self.slot}"


# --- infusion, follow-up visits and protocol deviations (DESIGN rules 4 and 5) -------------------

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
    volume_planned_ml = models.DecimalField("volume to give (mL)", max_digits=7, decimal_places=1, null=True,
                                            blank=True)  # fmt: skip
    volume_ml = models.DecimalField("volume given (mL)", max_digits=7, decimal_places=1, null=True, blank=True)
    drop_factor = models.PositiveSmallIntegerField("giving-set drop factor (drops/mL)")
    premedication = models.TextField(blank=True)
    stop_reason = models.TextField("reason stopped early", blank=True)
    # Set when the infusion finishes (``average_drip_rate``): the rate it averaged, with the protocol's range
    # copied so the flag stays explainable if the protocol changes (as on a drip-rate reading).
    average_drops_per_minute = models.DecimalField(
        "average rate (drops/min)", max_digits=12, decimal_places=1, null=True, blank=True, editable=False,
        help_text="Volume given × drop factor ÷ running minutes (interruptions excluded).",
    )  # fmt: skip
    average_rate_min = models.DecimalField("protocol minimum (drops/min)", max_digits=6, decimal_places=2,
                                           null=True, blank=True, editable=False)  # fmt: skip
    average_rate_max = models.DecimalField("protocol maximum (drops/min)", max_digits=6, decimal_places=2,
                                           null=True, blank=True, editable=False)  # fmt: skip
    average_rate_out_of_range = models.BooleanField("average rate outside the protocol", default=False,
                                                    editable=False)  # fmt: skip
    implausible_rate_confirmed = models.BooleanField(
        "implausible average confirmed", default=False, editable=False,
        help_text=f"The nurse confirmed an average above {IMPLAUSIBLE_RATE_FACTOR} × the protocol maximum as entered.",
    )  # fmt: skip
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


class FollowUpVisit(models.Model):
    """A visit of the protocol's schedule for one participant, dated from the infusion day (day 0).

    Target and window are copied from the schedule when the infusion completes, so a later protocol
    amendment does not move visits already planned.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        COMPLETED = "completed", "Completed"
        MISSED = "missed", "Missed"

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="visits")
    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, related_name="visits")
    definition = models.ForeignKey(VisitDefinition, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=120)
    day_offset = models.PositiveSmallIntegerField("day after infusion")
    target_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED, editable=False)
    done_on = models.DateField(null=True, blank=True)
    missed_reason = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")  # fmt: skip
    recorded_at = models.DateTimeField(null=True, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["participant", "target_date"]
        verbose_name = "follow-up visit"
        constraints = [
            models.UniqueConstraint(fields=["infusion", "definition"], name="visit_unique_per_infusion"),
            models.CheckConstraint(
                condition=Q(window_start__lte=F("target_date")) & Q(target_date__lte=F("window_end")),
                name="visit_target_within_window",
            ),
            models.CheckConstraint(
                condition=(Q(status="scheduled") & Q(done_on__isnull=True) & Q(missed_reason=""))
                | (Q(status="completed") & Q(done_on__isnull=False))
                | (Q(status="missed") & Q(done_on__isnull=True) & ~Q(missed_reason="")),
                name="visit_status_matches_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} — {self.name} ({self.target_date})"

    @property
    def out_of_window(self) -> bool:
        return self.done_on is not None and not (self.window_start <= self.done_on <= self.window_end)


class ProtocolDeviation(models.Model):
    """A departure from the protocol: opened by the system (rate, dose, visit window) or by staff."""

    class Category(models.TextChoices):
        INFUSION_RATE = "infusion_rate", "Infusion rate"
        DOSE = "dose", "Dose"
        VISIT_WINDOW = "visit_window", "Visit window"
        PRODUCT = "product", "Investigational product"
        ELIGIBILITY = "eligibility", "Eligibility"
        CONSENT = "consent", "Informed consent"
        PROCEDURE = "procedure", "Study procedure"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        MINOR = "minor", "Minor"
        MAJOR = "major", "Major"

    class Source(models.TextChoices):
        SYSTEM = "system", "System (automatic check)"
        STAFF = "staff", "Site staff"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="deviations")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="deviations")
    category = models.CharField(max_length=16, choices=Category.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    description = models.TextField()
    source = models.CharField("detected by", max_length=8, choices=Source.choices, editable=False)
    detected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", editable=False)  # fmt: skip
    occurred_on = models.DateField(help_text="The site's date the deviation happened.")
    detected_at = models.DateTimeField(editable=False)
    corrective_action = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+", editable=False)  # fmt: skip
    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, null=True, blank=True, related_name="deviations")
    drip_rate_reading = models.OneToOneField(DripRateReading, on_delete=models.PROTECT, null=True, blank=True,
                                             related_name="deviation")  # fmt: skip
    visit = models.ForeignKey(FollowUpVisit, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="deviations")  # fmt: skip

    history = audited_history()

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(source="system") & Q(detected_by__isnull=True))
                | (Q(source="staff") & Q(detected_by__isnull=False)),
                name="deviation_detector_matches_source",
            ),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(closed_at__isnull=True))
                | (Q(status="closed") & Q(closed_at__isnull=False) & ~Q(corrective_action="")),
                name="deviation_closed_has_date_and_action",
            ),
            models.CheckConstraint(
                condition=Q(drip_rate_reading__isnull=True) | (Q(category="infusion_rate") & Q(infusion__isnull=False)),
                name="deviation_reading_is_rate",
            ),
            models.CheckConstraint(condition=~Q(description=""), name="deviation_has_description"),
            # The automatic checks open one deviation per infusion (dose) and per visit (window): twice is a bug.
            models.UniqueConstraint(
                fields=["infusion"],
                condition=Q(category="dose", source="system"),
                name="deviation_one_dose_per_infusion",
            ),
            models.UniqueConstraint(
                fields=["visit"],
                condition=Q(category="visit_window", source="system"),
                name="deviation_one_window_per_visit",
            ),
            # The average-rate check at the end of an infusion: the system's rate deviation with no reading.
            models.UniqueConstraint(
                fields=["infusion"],
                condition=Q(category="infusion_rate", source="system", drip_rate_reading__isnull=True),
                name="deviation_one_average_rate_per_infusion",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} deviation ({self.get_category_display().lower()}) — {self.participant}"
