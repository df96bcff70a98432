"""Participants, screening, consent, cohorts and enrollment.

States change only in ``cohorts.services``. The database holds the invariants a race could break:
one active cohort per trial, one enrollment per participant, slot numbers unique per cohort and
within 1..capacity (the capacity is copied onto the enrollment so a CHECK can hold it), one
sentinel per cohort.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.history import audited_history
from trial.models import DoseLevel, Site, Trial


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
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=F("cohort_capacity")), name="enrollment_slot_within_capacity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} in cohort {self.cohort.sequence}, slot {self.slot}"
