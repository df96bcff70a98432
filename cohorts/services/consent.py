"""Signed informed consent."""

import zoneinfo
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
    Participant,
)
from cohorts.services.reminding import reconsent_reminders_cancel, reconsent_reminders_schedule
from cohorts.services.screening import eligibility_evaluate
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access


def consent_record(
    *, participant: Participant, document: ConsentDocument, signed_at: datetime, by, witness_name: str = ""
) -> ConsentRecord:
    require_permission(by, "cohorts.add_consentrecord", "record consent")
    require_participant_access(by, participant)
    if document.trial_id != participant.trial_id:
        raise InvalidInput(
            ErrorCode.WRONG_TRIAL, "That consent form belongs to another trial.", {"document": ["Wrong trial."]}
        )
    if signed_at > timezone.now():
        raise InvalidInput(
            ErrorCode.SIGNED_IN_FUTURE, "Consent cannot be signed in the future.", {"signed_at": ["In the future."]}
        )
    signed_on = timezone.localdate(signed_at, timezone=zoneinfo.ZoneInfo(participant.site.time_zone))
    if signed_on < document.effective_from or (document.effective_to and signed_on > document.effective_to):
        raise RuleViolation(
            ErrorCode.CONSENT_VERSION_NOT_IN_FORCE,
            f"Consent version {document.version} was not in force on {signed_on} "
            f"({document.effective_from} to {document.effective_to or 'now'}).",
        )
    with transaction.atomic():
        witness_name = clean_text(witness_name, field="witness_name", label="The witness's name", max_length=120)
        record = ConsentRecord(
            participant=participant, document=document, signed_at=signed_at, obtained_by=by, witness_name=witness_name
        )
        audit(record, by=by, reason=f"Consent v{document.version} signed").save()
        reconsent_reminders_cancel(participant=participant, document=document, by=by)
        eligibility_evaluate(participant=participant, by=by)
    return record


def consent_document_save(*, document: ConsentDocument, reason: str, by) -> ConsentDocument:
    """Add or change a consent-form version (the data manager), audited with the reason. A version in force from
    a later date than a participant's consent asks the site to consent her again (a reminder per participant)."""
    perm = "cohorts.change_consentdocument" if document.pk else "cohorts.add_consentdocument"
    require_permission(by, perm, "keep the consent-form versions")
    with transaction.atomic():
        audit(document, by=by, reason=reason).save()
        reconsent_reminders_schedule(document=document, by=by)
    return document
