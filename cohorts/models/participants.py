"""Participants and their screening: the record, fractures, verdicts per criterion, judgments, Gilbert's syndrome."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.history import audited_history
from trial.models import Site, Trial


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
        LOST_TO_FOLLOW_UP_PENDING = "ltfu_pending", "Lost to follow-up? (investigator to confirm)"
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
    frax_major_pct = models.DecimalField(
        "FRAX major osteoporotic (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    frax_hip_pct = models.DecimalField("FRAX hip (%)", max_digits=4, decimal_places=1, null=True, blank=True)
    high_fall_risk = models.BooleanField(null=True, blank=True)
    glucocorticoid_dose_mg_per_day = models.DecimalField(
        "glucocorticoid dose (prednisolone mg/day)", max_digits=5, decimal_places=1, null=True, blank=True
    )
    glucocorticoid_duration_months = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    ast_x_uln = models.DecimalField("AST (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    alt_x_uln = models.DecimalField("ALT (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    alp_x_uln = models.DecimalField("ALP (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True)
    bilirubin_x_uln = models.DecimalField(
        "total bilirubin (×ULN)", max_digits=5, decimal_places=2, null=True, blank=True
    )
    egfr = models.DecimalField("eGFR (mL/min/1.73 m²)", max_digits=5, decimal_places=1, null=True, blank=True)
    tsh = models.DecimalField("TSH (μIU/mL)", max_digits=6, decimal_places=3, null=True, blank=True)
    tsh_lower_limit = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    tsh_upper_limit = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    t4_in_range = models.BooleanField("T4 in range", null=True, blank=True)
    hbv_dna_cps_per_ml = models.DecimalField("HBV-DNA (cps/mL)", max_digits=12, decimal_places=0, null=True, blank=True)
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
