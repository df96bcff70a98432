"""An export run in the background from the admin, with its progress (records done of the total)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ExportJob(models.Model):
    class Kind(models.TextChoices):
        FHIR = "fhir", "FHIR R4 Bundle (JSON)"
        SDTM = "sdtm", "SDTM domains and define listing (ZIP of CSV)"
        DOSSIER_PDF = "dossier_pdf", "Escalation dossier (PDF)"
        DOSSIER_JSON = "dossier_json", "Escalation dossier (JSON)"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready to download"
        FAILED = "failed", "Failed"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    review = models.ForeignKey("safety.SafetyReview", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+", help_text="For a dossier: the review.")  # fmt: skip
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, editable=False)
    records_total = models.PositiveIntegerField(default=0, editable=False)
    records_done = models.PositiveIntegerField(default=0, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     editable=False)  # fmt: skip
    requested_at = models.DateTimeField(editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    file_name = models.CharField(max_length=200, blank=True, editable=False)
    error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = "export job"
        constraints = [
            models.CheckConstraint(condition=Q(records_done__lte=F("records_total")), name="exportjob_done_le_total"),
            models.CheckConstraint(
                condition=Q(review__isnull=False) | ~Q(kind__in=["dossier_pdf", "dossier_json"]),
                name="exportjob_dossier_has_review",
            ),
            models.CheckConstraint(condition=~Q(state="done") | ~Q(file_name=""), name="exportjob_done_has_file"),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk}: {self.get_kind_display()} of {self.trial_id} ({self.get_state_display()})"
