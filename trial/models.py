"""The protocol as data: a trial, its sites, dose levels, criteria, visit schedule and parameters.

Nothing here is specific to NCT06949137: ``load_protocol`` fills these tables from a data file,
and a second trial with other dose levels, cohort sizes or windows needs no code change.
"""

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from cohorts import rules
from core.history import audited_history


def validate_time_zone(value: str) -> None:
    """An IANA zone name: every site date (DLT windows, consent, reporting days) is counted in it."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai).") from None


class Trial(models.Model):
    class Phase(models.TextChoices):
        PHASE1 = "PHASE1", "Phase 1"
        PHASE1_2 = "PHASE1_PHASE2", "Phase 1/2"

    class Status(models.TextChoices):
        NOT_YET_RECRUITING = "not_yet_recruiting", "Not yet recruiting"
        RECRUITING = "recruiting", "Recruiting"
        STOPPED = "stopped", "Stopped (no enrollment or infusion)"
        COMPLETED = "completed", "Completed"

    class EscalationDesign(models.TextChoices):
        THREE_PLUS_THREE = "3+3", "3+3"
        BOIN = "boin", "BOIN"

    class ThreePlusThreeVariant(models.TextChoices):
        CONFIRM_ON_SIX = "confirm_on_six", "Confirm the MTD on 6 patients (Le Tourneau 2009)"
        ESCALATION_DEFAULT = "escalation_default", "R escalation default (no de-escalation)"

    class EvaluabilityRule(models.TextChoices):
        FULL_DOSE_OR_DLT = "full_dose_or_dlt", "Full dose given, or a DLT occurred"
        ANY_INFUSION = "any_infusion", "Any dose given, or a DLT occurred"

    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        ALL = "all", "All"

    registry_id = models.CharField("registry ID", max_length=32, unique=True, help_text="e.g. NCT06949137")
    title = models.CharField(max_length=500)
    short_title = models.CharField(max_length=120, blank=True)
    phase = models.CharField(max_length=20, choices=Phase.choices)
    design = models.CharField(
        max_length=200, help_text="Allocation, model, masking as registered (e.g. non-randomized, sequential)."
    )
    product = models.CharField("investigational product", max_length=200)
    sponsor = models.CharField(max_length=300, blank=True)
    planned_enrollment = models.PositiveIntegerField()
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.NOT_YET_RECRUITING)
    protocol_version = models.CharField(max_length=40)
    eligible_sex = models.CharField(max_length=8, choices=Sex.choices, default=Sex.ALL)
    min_age_years = models.PositiveSmallIntegerField("minimum age (years, inclusive)")
    max_age_years = models.PositiveSmallIntegerField("maximum age (years, inclusive)")

    # --- design parameters (editable by the data manager; each change is audited) ---
    escalation_design = models.CharField(
        max_length=8, choices=EscalationDesign.choices, default=EscalationDesign.THREE_PLUS_THREE
    )
    three_plus_three_variant = models.CharField(
        "3+3 variant",
        max_length=20,
        choices=ThreePlusThreeVariant.choices,
        default=ThreePlusThreeVariant.CONFIRM_ON_SIX,
        help_text="How the review's 3+3 recommendation ends escalation (docs/protocol.md).",
    )
    evaluability_rule = models.CharField(
        "evaluable for dose escalation",
        max_length=20,
        choices=EvaluabilityRule.choices,
        default=EvaluabilityRule.FULL_DOSE_OR_DLT,
        help_text="Who counts in the escalation rule; a non-evaluable participant needs a replacement.",
    )
    boin_target_rate = models.DecimalField(
        "BOIN target DLT rate (second opinion)", max_digits=4, decimal_places=3, default=Decimal("0.300")
    )
    cohort_size = models.PositiveSmallIntegerField("participants per cohort")
    max_per_dose_level = models.PositiveSmallIntegerField("maximum participants per dose level")
    dlt_window_days = models.PositiveSmallIntegerField("DLT window (days after infusion)")
    sentinel_observation_days = models.PositiveSmallIntegerField(
        "sentinel observation (days)", help_text="The cohort's first participant is observed alone this long."
    )
    stagger_hours = models.PositiveSmallIntegerField("stagger between participants (hours)")
    infusion_rate_min = models.DecimalField("infusion rate minimum (drops/min)", max_digits=6, decimal_places=2)
    infusion_rate_max = models.DecimalField("infusion rate maximum (drops/min)", max_digits=6, decimal_places=2)
    default_drop_factor = models.PositiveSmallIntegerField(
        "default giving-set drop factor (drops/mL)", help_text="Used to derive mL/h from the observed drip rate."
    )
    dose_tolerance_pct = models.DecimalField(
        "dose tolerance (± % of the dose level's cells)",
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    max_infusions_per_participant = models.PositiveSmallIntegerField(default=1)
    review_quorum = models.PositiveSmallIntegerField("safety review quorum (signatures, chair included)")
    # --- DLT definition and stopping rules (protocol data) ---
    dlt_min_grade = models.PositiveSmallIntegerField("DLT: minimum CTCAE grade", default=3)
    dlt_min_relationship = models.CharField(
        "DLT: minimum relationship to the product",
        max_length=12,
        default="possible",
        choices=[
            ("unlikely", "Unlikely"),
            ("possible", "Possible"),
            ("probable", "Probable"),
            ("definite", "Definite"),
        ],
    )
    dlt_stop_count = models.PositiveSmallIntegerField(
        "stop: confirmed DLTs at one dose level that pause the cohort",
        default=2,
        help_text="3+3: two or more DLTs among up to six participants exceed the MTD.",
    )
    stop_on_related_death = models.BooleanField("stop: a related grade 5 event pauses the cohort", default=True)
    # --- follow-up ---
    lost_to_follow_up_missed_visits = models.PositiveSmallIntegerField(
        "lost to follow-up: consecutive missed visits",
        default=2,
        help_text="After this many consecutive missed visits the participant is shown as lost to follow-up, "
        "pending an investigator's confirmation (docs/protocol.md).",
    )
    # --- reminder lead times (protocol data). Empty: the default of reminders.kinds.LEAD_DEFAULTS, with its source
    # in docs/protocol.md. Nullable, so SQLite adds the columns without rebuilding the table its triggers name.
    visit_reminder_days = models.PositiveSmallIntegerField(
        "reminder: days before a visit window opens", null=True, blank=True, help_text="Empty: 2."
    )
    review_target_days = models.PositiveSmallIntegerField(
        "review target: days from opening to the committee's decision", null=True, blank=True, help_text="Empty: 7."
    )
    review_reminder_days = models.PositiveSmallIntegerField(
        "reminder: days before the review target date", null=True, blank=True, help_text="Empty: 2."
    )
    report_reminder_days = models.PositiveSmallIntegerField(
        "reminder: days before a SUSAR report is due", null=True, blank=True, help_text="Empty: 2."
    )
    sae_follow_up_days = models.PositiveSmallIntegerField(
        "reminder: days after awareness to follow up an unresolved serious event",
        null=True,
        blank=True,
        help_text="Empty: 7.",
    )

    history = audited_history()

    class Meta:
        ordering = ["registry_id"]
        constraints = [
            models.CheckConstraint(condition=Q(planned_enrollment__gte=1), name="trial_planned_enrollment_positive"),
            models.CheckConstraint(condition=Q(max_age_years__gte=F("min_age_years")), name="trial_age_range_ordered"),
            models.CheckConstraint(condition=Q(cohort_size__gte=1), name="trial_cohort_size_positive"),
            models.CheckConstraint(
                condition=Q(max_per_dose_level__gte=F("cohort_size")), name="trial_max_per_dose_at_least_cohort"
            ),
            models.CheckConstraint(condition=Q(infusion_rate_min__gt=0), name="trial_rate_min_positive"),
            models.CheckConstraint(
                condition=Q(infusion_rate_max__gte=F("infusion_rate_min")), name="trial_rate_range_ordered"
            ),
            models.CheckConstraint(condition=Q(default_drop_factor__gte=1), name="trial_drop_factor_positive"),
            models.CheckConstraint(
                condition=Q(boin_target_rate__gt=0) & Q(boin_target_rate__lt=1), name="trial_boin_target_in_0_1"
            ),
            models.CheckConstraint(
                condition=Q(dose_tolerance_pct__gte=0) & Q(dose_tolerance_pct__lte=100),
                name="trial_dose_tolerance_pct_range",
            ),
            models.CheckConstraint(condition=Q(review_quorum__gte=1), name="trial_review_quorum_positive"),
            models.CheckConstraint(condition=Q(dlt_window_days__gte=1), name="trial_dlt_window_positive"),
            models.CheckConstraint(
                condition=Q(max_infusions_per_participant__gte=1), name="trial_max_infusions_positive"
            ),
            models.CheckConstraint(condition=Q(dlt_min_grade__gte=1, dlt_min_grade__lte=5), name="trial_dlt_grade_1_5"),
            models.CheckConstraint(condition=Q(dlt_stop_count__gte=1), name="trial_dlt_stop_count_positive"),
            models.CheckConstraint(
                condition=Q(lost_to_follow_up_missed_visits__gte=1), name="trial_lost_to_follow_up_missed_positive"
            ),
            models.CheckConstraint(
                condition=Q(three_plus_three_variant__in=["confirm_on_six", "escalation_default"]),
                name="trial_three_plus_three_variant_known",
            ),
            models.CheckConstraint(
                condition=Q(evaluability_rule__in=["full_dose_or_dlt", "any_infusion"]),
                name="trial_evaluability_rule_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registry_id} — {self.short_title or self.title}"


class Site(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=120)
    region = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=120)
    time_zone = models.CharField(
        max_length=64,
        validators=[validate_time_zone],
        help_text="IANA name, e.g. Asia/Shanghai; times are shown in it.",
    )

    history = audited_history()

    class Meta:
        ordering = ["trial", "name"]
        constraints = [models.UniqueConstraint(fields=["trial", "name"], name="site_unique_name_per_trial")]

    def __str__(self) -> str:
        return f"{self.name}, {self.city}"


def format_cells(cells: int) -> str:
    """6.0×10⁷ style: one decimal of mantissa, superscript exponent. Exact value stays an integer."""
    if cells <= 0:
        return str(cells)
    exponent = len(str(cells)) - 1
    mantissa = Decimal(cells) / (Decimal(10) ** exponent)
    superscript = str(exponent).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))
    return f"{mantissa:.1f}×10{superscript}"


class DoseLevel(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="dose_levels")
    level = models.PositiveSmallIntegerField(help_text="1 is the lowest dose; escalation goes up by one.")
    label = models.CharField(max_length=60)
    cells = models.PositiveBigIntegerField(help_text="Exact number of cells per infusion.")

    history = audited_history()

    class Meta:
        ordering = ["trial", "level"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "level"], name="doselevel_unique_level_per_trial"),
            models.UniqueConstraint(fields=["trial", "label"], name="doselevel_unique_label_per_trial"),
            models.CheckConstraint(condition=Q(level__gte=1), name="doselevel_level_positive"),
            models.CheckConstraint(condition=Q(cells__gte=1), name="doselevel_cells_positive"),
        ]

    def __str__(self) -> str:
        return f"Dose {self.level} ({self.label}, {self.cells_display} cells)"

    @property
    def cells_display(self) -> str:
        return format_cells(self.cells)


class EligibilityCriterion(models.Model):
    class Kind(models.TextChoices):
        INCLUSION = "inclusion", "Inclusion"
        EXCLUSION = "exclusion", "Exclusion"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="criteria")
    code = models.CharField(max_length=16, help_text="As numbered in the protocol: I1…, E2…")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.TextField()
    rule = models.CharField(max_length=80, help_text="Key of the eligibility rule that evaluates this criterion.")
    params = models.JSONField(default=dict, blank=True, help_text="The rule's parameters (limits, windows).")
    needs_judgment = models.BooleanField(
        default=False, help_text="Part of the criterion is confirmed by an investigator."
    )
    order = models.PositiveSmallIntegerField()

    history = audited_history()

    class Meta:
        ordering = ["trial", "order"]
        verbose_name_plural = "eligibility criteria"
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="criterion_unique_code_per_trial"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.text[:80]}"

    def clean(self) -> None:
        """The rule must be registered and its params usable: a typo here would break every screening."""
        try:
            rules.validate_criteria(
                [
                    rules.CriterionSpec(
                        code=self.code or "X", kind=self.kind or "inclusion", rule=self.rule, params=self.params or {}
                    )
                ]
            )
        except (rules.EligibilityConfigError, TypeError, ValueError) as exc:
            raise ValidationError({"params" if self.rule in rules.known_rules() else "rule": str(exc)}) from None


class VisitDefinition(models.Model):
    """One visit of the follow-up schedule, counted in days from the infusion day (day 0)."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="visit_schedule")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=120)
    day_offset = models.PositiveSmallIntegerField("day after infusion")
    window_before_days = models.PositiveSmallIntegerField(default=0)
    window_after_days = models.PositiveSmallIntegerField(default=0)

    history = audited_history()

    class Meta:
        ordering = ["trial", "day_offset"]
        verbose_name = "scheduled visit"
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="visit_unique_code_per_trial"),
            models.CheckConstraint(
                condition=Q(window_before_days__lte=F("day_offset")), name="visit_window_not_before_infusion"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (day {self.day_offset}, −{self.window_before_days}/+{self.window_after_days})"


class SiteAssignment(models.Model):
    """A member of site staff or an investigator works at this site: they see and write its participants only.

    Site staff and investigators with no active assignment see no participant at all (``trial.access``).
    Ended, never deleted: ``active`` off keeps who had access when, in the history.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="site_assignments")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="assignments")
    active = models.BooleanField(default=True, help_text="Off: the user no longer works at this site.")

    history = audited_history()

    class Meta:
        ordering = ["site", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "site"], name="siteassignment_unique_user_site")]
        # Held by the Safety committee and Data manager roles (core.roles): no assignment needed (trial.access).
        permissions = [("view_every_site", "See the participants of every site")]

    def __str__(self) -> str:
        return f"{self.user} at {self.site}{'' if self.active else ' (ended)'}"


class TrialAssignment(models.Model):
    """A sponsor's account (and its API tokens) reads this trial; a sponsor with none reads no trial."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trial_assignments")
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="assignments")
    active = models.BooleanField(default=True, help_text="Off: the sponsor no longer reads this trial.")

    history = audited_history()

    class Meta:
        ordering = ["trial", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "trial"], name="trialassignment_unique_user_trial")]

    def __str__(self) -> str:
        return f"{self.user} reads {self.trial.registry_id}{'' if self.active else ' (ended)'}"
