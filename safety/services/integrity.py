"""The daily integrity check of the signatures: verify them all; when anything broke, record an alert.

Run by the beat task ``safety.tasks.verify_signatures_daily`` (as the system actor ``system:beat``). The
alert is one row per kind of check and UTC day (``integrityalert_one_per_kind_per_day``), so a task run twice
records it once. In the same transaction a safety reminder (it cannot be muted) goes to the data managers
(``integrity-alert``) and to each chair (``integrity-alert-chair``: the users holding ``safety.chair_review``
themselves, as the gate reads it); it is logged at CRITICAL with every problem, and listed in the admin for
the data manager and the committee.
"""

import datetime as dt
import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from reminders import services as reminders
from safety.models import IntegrityAlert
from safety.services.verification import signature_report

logger = logging.getLogger(__name__)


def _chairs():
    """The chairs as the gate knows them: ``safety.chair_review`` held by the user itself."""
    held = {"user_permissions__content_type__app_label": "safety", "user_permissions__codename": "chair_review"}
    return get_user_model().objects.filter(is_active=True, **held).distinct().order_by("pk")


def signatures_check(*, now=None, by=None) -> IntegrityAlert | None:
    """Verify every signature of every trial; an ``IntegrityAlert`` if anything is wrong (else None)."""
    report = signature_report()
    if report["intact"]:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        alert, created = IntegrityAlert.objects.get_or_create(
            kind=IntegrityAlert.Kind.SIGNATURES,
            detected_on=now.astimezone(dt.UTC).date(),
            defaults={
                "detected_at": now,
                "signatures_checked": report["signatures_checked"],
                "problem_count": len(report["problems"]),
                "problems": report["problems"],
            },
        )
        if created:
            label = f"The signature check of {alert.detected_on} found {alert.problem_count} problem(s)"
            common = {"subject": f"integrity-alert:{alert.pk}", "subject_label": label, "due_at": now,
                      "event_at": now, "by": by}  # fmt: skip
            reminders.reminder_schedule(kind="integrity-alert", **common)
            for chair in _chairs():
                reminders.reminder_schedule(kind="integrity-alert-chair", recipient_user=chair, **common)
    if created:
        logger.critical(
            "Signature verification failed: %d problem(s): %s",
            alert.problem_count,
            "; ".join(p["message"] for p in report["problems"]),
        )
    return alert
