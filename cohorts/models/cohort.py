"""Cohorts and enrollment. A cohort's state changes only in ``cohorts.services.lifecycle``."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cohorts.models.participants import Participant
from core.history import audited_history
from trial.models import DoseLevel, Trial

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
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision = models.CharField(max_length=40, blank=True, editable=False, help_text="The review's decision")

    history = audited_history()

    class Meta:
        ordering = ["trial", "sequence"]
        permissions = [
            ("open_first_cohort", "Can open the first cohort of a trial"),
            ("correct_locked_data", "Can correct the clinical records of a closed cohort, with a reason"),
        ]
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
