"""Follow-up visits planned from the infusion day, and protocol deviations."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cohorts.models.infusions import DripRateReading, Infusion
from cohorts.models.participants import Participant
from core.history import audited_history
from trial.models import Trial, VisitDefinition


class FollowUpVisit(models.Model):
    """A visit of the protocol's schedule for one participant, dated from the infusion day (day 0).

    Target and window are copied from the schedule when the infusion completes, so a later protocol
    amendment does not move visits already planned.
    """

    free_text_fields = ("missed_reason",)

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
    # Missed by the follow-up sweep (nobody recorded it by the end of its window), not yet confirmed by staff:
    # it may still be recorded as done (late) or as missed with the reason.
    missed_automatically = models.BooleanField(default=False, editable=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
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
            models.CheckConstraint(
                condition=Q(missed_automatically=False) | Q(status="missed"),
                name="visit_automatic_miss_is_missed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} — {self.name} ({self.target_date})"

    @property
    def out_of_window(self) -> bool:
        return self.done_on is not None and not (self.window_start <= self.done_on <= self.window_end)


class ProtocolDeviation(models.Model):
    """A departure from the protocol: opened by the system (rate, dose, visit window) or by staff."""

    free_text_fields = ("description", "corrective_action")

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
    detected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    occurred_on = models.DateField(help_text="The site's date the deviation happened.")
    detected_at = models.DateTimeField(editable=False)
    corrective_action = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    infusion = models.ForeignKey(Infusion, on_delete=models.PROTECT, null=True, blank=True, related_name="deviations")
    drip_rate_reading = models.OneToOneField(
        DripRateReading, on_delete=models.PROTECT, null=True, blank=True, related_name="deviation"
    )
    visit = models.ForeignKey(FollowUpVisit, on_delete=models.PROTECT, null=True, blank=True, related_name="deviations")

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


class LostToFollowUp(models.Model):
    """A participant who missed the protocol's number of consecutive visits, flagged by the follow-up sweep
    (or by the recording of a missed visit) until an investigator confirms she is lost to follow-up or
    dismisses the flag (she is still followed). One flag per streak: ``last_missed_visit`` is unique, so
    sweeps that run again or at the same time never flag the same streak twice."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending an investigator's confirmation"
        CONFIRMED = "confirmed", "Confirmed: lost to follow-up"
        DISMISSED = "dismissed", "Dismissed: still in follow-up"

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="lost_to_follow_up_flags")
    last_missed_visit = models.OneToOneField(FollowUpVisit, on_delete=models.PROTECT, related_name="+", editable=False)
    missed_visits = models.PositiveSmallIntegerField("consecutive missed visits", editable=False)
    flagged_at = models.DateTimeField(editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decision_note = models.TextField(blank=True, editable=False)

    history = audited_history()

    class Meta:
        ordering = ["-flagged_at", "-pk"]
        verbose_name = "lost to follow-up flag"
        permissions = [("decide_losttofollowup", "Can confirm or dismiss a lost-to-follow-up flag")]
        constraints = [
            models.UniqueConstraint(
                fields=["participant"], condition=Q(state="pending"), name="ltfu_one_pending_per_participant"
            ),
            models.CheckConstraint(
                condition=(Q(state="pending") & Q(decided_at__isnull=True) & Q(decision_note=""))
                | (~Q(state="pending") & Q(decided_at__isnull=False) & ~Q(decision_note="")),
                name="ltfu_decision_has_when_and_note",
            ),
            models.CheckConstraint(condition=Q(missed_visits__gte=1), name="ltfu_missed_visits_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.participant}: {self.missed_visits} consecutive missed visits ({self.get_state_display()})"
