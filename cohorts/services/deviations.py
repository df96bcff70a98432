"""Protocol deviations: opened by the automatic checks, recorded, assessed and closed by staff."""

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from cohorts.models import (
    FollowUpVisit,
    Infusion,
    Participant,
    ProtocolDeviation,
)
from cohorts.selectors import site_today
from cohorts.services.data_lock import CORRECT_LOCKED_DATA, data_lock_check
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit, audited_bulk_create
from trial.access import require_participant_access


def deviation_open_by_system(
    *, participant: Participant, category: str, severity: str, description: str, occurred_on: date, by, **links
) -> ProtocolDeviation:
    """A deviation opened by an automatic check, in the transaction of the record that triggered it."""
    deviation = ProtocolDeviation(
        trial_id=participant.trial_id,
        participant=participant,
        category=category,
        severity=severity,
        description=description,
        source=ProtocolDeviation.Source.SYSTEM,
        occurred_on=occurred_on,
        detected_at=timezone.now(),
        **links,
    )
    audit(deviation, by=by, reason=f"Opened automatically: {category.replace('_', ' ')}").save()
    return deviation


def deviations_open_by_system(rows: list[dict], *, by, reason: str) -> list[ProtocolDeviation]:
    """Many deviations opened by an automatic check (the follow-up sweep) in one INSERT per batch, each with
    its history row. ``rows`` hold the fields of ``deviation_open_by_system`` (``participant`` and links)."""
    now = timezone.now()
    deviations = [
        audit(
            ProtocolDeviation(
                trial_id=row["participant"].trial_id,
                source=ProtocolDeviation.Source.SYSTEM,
                detected_at=now,
                **row,
            ),
            by=by,
            reason=reason,
        )
        for row in rows
    ]
    return audited_bulk_create(deviations)


def deviation_record(
    *,
    participant: Participant,
    category: str,
    severity: str,
    description: str,
    occurred_on: date,
    by,
    corrective_action: str = "",
    infusion: Infusion | None = None,
    visit: FollowUpVisit | None = None,
) -> ProtocolDeviation:
    """A deviation found by site staff (the automatic ones open in the services that detect them)."""
    require_permission(by, "cohorts.add_protocoldeviation", "record protocol deviations")
    require_participant_access(by, participant)
    if category not in ProtocolDeviation.Category.values:
        raise InvalidInput(ErrorCode.INVALID, f"Unknown category {category!r}.", {"category": ["Invalid."]})
    if severity not in ProtocolDeviation.Severity.values:
        raise InvalidInput(ErrorCode.INVALID, f"Unknown severity {severity!r}.", {"severity": ["Invalid."]})
    description = clean_text(description, field="description", label="Description", max_length=5000, required=True)
    corrective_action = clean_text(
        corrective_action, field="corrective_action", label="Corrective action", max_length=5000
    )
    if isinstance(occurred_on, datetime) or not isinstance(occurred_on, date):
        raise InvalidInput(
            ErrorCode.INVALID, "The date of the deviation must be a date.", {"occurred_on": ["Invalid."]}
        )
    if occurred_on > site_today(participant):
        raise InvalidInput(
            ErrorCode.DATE_IN_FUTURE, "A deviation cannot happen in the future.", {"occurred_on": ["Future."]}
        )
    if infusion is not None and infusion.participant_id != participant.pk:
        raise InvalidInput(
            ErrorCode.INVALID, "That infusion is another participant's.", {"infusion": ["Wrong participant."]}
        )
    if visit is not None and visit.participant_id != participant.pk:
        raise InvalidInput(ErrorCode.INVALID, "That visit is another participant's.", {"visit": ["Wrong participant."]})
    deviation = ProtocolDeviation(
        trial_id=participant.trial_id,
        participant=participant,
        category=category,
        severity=severity,
        description=description,
        source=ProtocolDeviation.Source.STAFF,
        detected_by=by,
        occurred_on=occurred_on,
        detected_at=timezone.now(),
        corrective_action=corrective_action,
        infusion=infusion,
        visit=visit,
    )
    with transaction.atomic():
        audit(deviation, by=by, reason="Deviation recorded").save()
    return deviation


def deviation_update(
    *,
    deviation: ProtocolDeviation,
    by,
    reason: str,
    severity: str | None = None,
    description: str | None = None,
    corrective_action: str | None = None,
    close: bool = False,
) -> ProtocolDeviation:
    """Assess, correct or close a deviation (each change with its reason). A closed deviation is final."""
    if not by.has_perm(CORRECT_LOCKED_DATA):
        require_permission(by, "cohorts.change_protocoldeviation", "change protocol deviations")
    require_participant_access(by, deviation, via="participant")
    reason = clean_text(
        reason, field="reason", label="Reason", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    if severity is not None and severity not in ProtocolDeviation.Severity.values:
        raise InvalidInput(ErrorCode.INVALID, f"Unknown severity {severity!r}.", {"severity": ["Invalid."]})
    if description is not None:
        description = clean_text(description, field="description", label="Description", max_length=5000, required=True)
    if corrective_action is not None:
        corrective_action = clean_text(
            corrective_action, field="corrective_action", label="Corrective action", max_length=5000
        )
    with transaction.atomic():
        deviation = ProtocolDeviation.objects.select_for_update().select_related("participant").get(pk=deviation.pk)
        reason = data_lock_check(
            participant=deviation.participant,
            record=deviation,
            by=by,
            reason=reason,
            perm="cohorts.change_protocoldeviation",
            action="change protocol deviations",
        )
        if deviation.status == ProtocolDeviation.Status.CLOSED:
            raise RuleViolation(ErrorCode.DEVIATION_CLOSED, "This deviation is closed; record a new one to add to it.")
        if severity is not None:
            deviation.severity = severity
        if description is not None:
            deviation.description = description
        if corrective_action is not None:
            deviation.corrective_action = corrective_action
        if close:
            if not deviation.corrective_action:
                raise InvalidInput(
                    ErrorCode.CORRECTIVE_ACTION_REQUIRED,
                    "Give the corrective action before closing.",
                    {"corrective_action": ["Required to close."]},
                )
            deviation.status = ProtocolDeviation.Status.CLOSED
            deviation.closed_at = timezone.now()
            deviation.closed_by = by
        audit(deviation, by=by, reason=reason).save()
    return deviation
