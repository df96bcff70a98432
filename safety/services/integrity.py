"""The daily integrity check of the signatures: verify them all; when anything broke, record an alert.

Run by the beat task ``safety.tasks.verify_signatures_daily`` (a system actor: no user). The alert is one
row per kind of check and UTC day (``integrityalert_one_per_kind_per_day``), so a task run twice records it
once; it is logged at CRITICAL with every problem, and listed in the admin for the data manager and the
committee (the chair among them).
"""

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from safety.models import IntegrityAlert
from safety.services.verification import signature_report

logger = logging.getLogger(__name__)


def signatures_check(*, now=None) -> IntegrityAlert | None:
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
        logger.critical(
            "Signature verification failed: %d problem(s): %s",
            alert.problem_count,
            "; ".join(p["message"] for p in report["problems"]),
        )
    return alert
