"""Informed consent: the versions of the form and each participant's signed consent."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cohorts.models.participants import Participant
from core.history import audited_history
from trial.models import Trial


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
