"""Reminders are rows: created by the services in the transaction of the fact that causes them, cancelled in
the transaction of the fact that ends their need, claimed and delivered by the beat sweep exactly once."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.history import audited_history
from reminders.kinds import KIND_CHOICES, NON_SAFETY_KINDS


class Reminder(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending (claimed by the sweep)"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled (no longer needed)"
        FAILED = "failed", "Failed (gave up after the last attempt)"

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail and in-app"
        IN_APP = "in_app", "In-app only"

    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    dedupe_key = models.CharField(max_length=200, unique=True, help_text="e.g. visit:42:visit-window-opens")
    subject = models.CharField(max_length=80, db_index=True, help_text="What it is about, e.g. visit:42")
    subject_label = models.CharField(max_length=300)
    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    site = models.ForeignKey("trial.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="reminders"
    )
    recipient_role = models.CharField(
        max_length=40, blank=True, help_text="The active users of this role who see its site (trial.access)"
    )
    safety = models.BooleanField(default=False, help_text="A safety reminder cannot be muted.")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    event_at = models.DateTimeField(null=True, blank=True, help_text="The moment the reminder is about")
    due_at = models.DateTimeField(help_text="When it is sent (UTC)")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_reason = models.CharField(max_length=300, blank=True, editable=False)
    resolved_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When its subject stopped needing it (a sent reminder)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["-due_at", "-pk"]
        permissions = [
            ("view_reminder_log", "Can read every reminder (the data manager's log)"),
            ("send_reminder_again", "Can send a reminder again"),
        ]
        indexes = [
            # The sweep: due pending rows, and rows stuck in sending past the claim timeout,
            # ordered as the sweep takes them, so a batch's scan stops at the batch's size
            models.Index(fields=["due_at", "id"], condition=Q(state="pending"), name="reminder_pending_due_id"),
            models.Index(fields=["claimed_at", "id"], condition=Q(state="sending"), name="reminder_sending_claimed_id"),
            models.Index(fields=["recipient_role", "state"], name="reminder_role_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(recipient_user__isnull=False) & Q(recipient_role=""))
                | (Q(recipient_user__isnull=True) & ~Q(recipient_role="")),
                name="reminder_one_recipient",
            ),
            models.CheckConstraint(
                condition=~Q(state="sent") | Q(sent_at__isnull=False), name="reminder_sent_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(state="cancelled") | Q(cancelled_at__isnull=False), name="reminder_cancelled_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(state="sending") | Q(claimed_at__isnull=False), name="reminder_sending_has_claim"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "sending", "sent", "cancelled", "failed"]),
                name="reminder_state_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject_label}"

    @property
    def recipient_display(self) -> str:
        return self.recipient_user.get_username() if self.recipient_user_id else f"role: {self.recipient_role}"


class MyReminder(Reminder):
    """The reminders addressed to the reader (herself or her role): "My reminders" in the admin."""

    class Meta:
        proxy = True
        verbose_name = "my reminder"
        verbose_name_plural = "my reminders"


class ReminderDelivery(models.Model):
    """One delivery attempt of a reminder (append-only): to whom, and what the mail backend answered."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Accepted by the mail backend"
        FAILED = "failed", "Failed"

    reminder = models.ForeignKey(Reminder, on_delete=models.PROTECT, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    recipients = models.TextField(blank=True, help_text="The addresses, one a line")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["reminder", "attempt"]
        verbose_name_plural = "reminder deliveries"
        constraints = [
            models.UniqueConstraint(fields=["reminder", "attempt"], name="delivery_unique_attempt"),
            models.UniqueConstraint(
                fields=["reminder"], condition=Q(outcome="sent"), name="delivery_one_sent_per_reminder"
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.attempt} of reminder {self.reminder_id}: {self.get_outcome_display()}"


class ReminderMute(models.Model):
    """A user does not want e-mail of one non-safety kind (in-app they still see it)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminder_mutes")
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="mute_unique_user_kind"),
            models.CheckConstraint(condition=Q(kind__in=list(NON_SAFETY_KINDS)), name="reminder_mute_non_safety_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user} mutes {self.kind}"
