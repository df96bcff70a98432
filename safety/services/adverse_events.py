"""Recording and following up adverse events, and the investigator's DLT decision.

Recording or updating an event evaluates, in the same transaction: DLT candidacy, the expedited
reporting clocks, and the stopping rules (which pause the trial's active cohort at once).
"""

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cohorts import services as cohort_services
from cohorts.models import Participant
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from safety import dlt
from safety.models import AdverseEvent
from safety.services.clocks import start_reporting_clocks
from safety.services.stopping import apply_stopping_rules, is_related_death

AE_FIELDS = (
    "verbatim_term",
    "ctcae_term",
    "ctcae_term_text",
    "onset_date",
    "resolution_date",
    "grade",
    "serious",
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital_anomaly",
    "sae_other_important",
    "relationship",
    "expected",
    "infusion_reaction",
    "action_taken",
    "outcome",
    "site_aware_at",
)
SAE_CRITERIA = (
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital_anomaly",
    "sae_other_important",
)


DEATH_IS_SERIOUS = " (grade 5: serious, results in death, by definition: ICH E2A II.B)"


def _death_is_serious(event: AdverseEvent) -> bool:
    """ICH E2A II.B: an event that results in death is serious. A grade 5 or fatal event is made serious
    with the death criterion whatever the form said (True when this changed it). The service sets rather
    than refuses: no answer could make a death non-serious, and the sponsor's 24-hour clock is running."""
    if event.grade != 5 and event.outcome != AdverseEvent.Outcome.FATAL:
        return False
    changed = not (event.serious and event.sae_death)
    event.serious, event.sae_death = True, True
    return changed


def _validate(event: AdverseEvent) -> None:
    """Refuse bad input with a clear message before anything is written."""
    problems: dict[str, list[str]] = {}
    for name in ("verbatim_term", "ctcae_term_text"):  # PostgreSQL refuses NUL: a clear 400, not a 500
        if "\x00" in (getattr(event, name) or ""):
            problems[name] = ["Text cannot contain NUL characters."]
    if not isinstance(event.grade, int) or not 1 <= event.grade <= 5:
        problems["grade"] = [f"CTCAE grade must be 1 to 5, not {event.grade!r}."]
    if event.relationship not in AdverseEvent.Relationship.values:
        problems["relationship"] = [
            f"Relationship must be one of {', '.join(AdverseEvent.Relationship.values)}, not {event.relationship!r}."
        ]
    if event.resolution_date and event.onset_date and event.resolution_date < event.onset_date:
        problems["resolution_date"] = ["The event cannot resolve before its onset."]
    if event.serious and not any(getattr(event, name) for name in SAE_CRITERIA):
        problems["serious"] = ["A serious event needs at least one seriousness criterion (ICH E2A)."]
    if not event.serious and any(getattr(event, name) for name in SAE_CRITERIA):
        problems["serious"] = ["A seriousness criterion is ticked: mark the event serious."]
    if event.grade == 5 and event.outcome != AdverseEvent.Outcome.FATAL:
        problems["outcome"] = ["A grade 5 event is fatal: set the outcome to fatal."]
    if event.outcome == AdverseEvent.Outcome.FATAL and event.grade != 5:
        problems["grade"] = ["A fatal outcome is grade 5."]
    if event.sae_death and event.grade != 5:
        problems["sae_death"] = [
            "'Results in death' is the criterion of a fatal (grade 5) event; for another "
            "grade choose the criterion that applies."
        ]
    if event.site_aware_at and event.site_aware_at > timezone.now():
        problems["site_aware_at"] = ["Awareness cannot be in the future."]
    if not event.ctcae_term_id and not (event.ctcae_term_text or "").strip():
        problems["ctcae_term"] = ["Choose a CTCAE term or write it as free text."]
    if problems:
        raise InvalidInput(ErrorCode.INVALID, " ".join(m for ms in problems.values() for m in ms), problems)
    try:
        event.full_clean(exclude=["participant", "reported_by", "worst_grade"])
    except ValidationError as exc:
        raise InvalidInput(ErrorCode.INVALID, "The adverse event is not valid.", exc.message_dict) from None
    participant = event.participant
    zone = zoneinfo.ZoneInfo(participant.site.time_zone)
    first_consent = participant.consents.order_by("signed_at").first()
    if first_consent is None:
        raise RuleViolation(ErrorCode.NO_CONSENT, f"{participant} has no signed consent: no study adverse event yet.")
    consented_on = timezone.localdate(first_consent.signed_at, timezone=zone)
    today = timezone.localdate(timezone=zone)
    if event.onset_date > today or (event.resolution_date and event.resolution_date > today):
        raise InvalidInput(
            ErrorCode.DATE_IN_FUTURE,
            "Onset and resolution cannot be after today (site time).",
            {"onset_date": ["In the future."]},
        )
    if event.onset_date < consented_on:
        raise InvalidInput(
            ErrorCode.ONSET_BEFORE_CONSENT,
            f"Onset {event.onset_date} is before consent ({consented_on}): a pre-consent condition is medical "
            "history, not an adverse event.",
            {"onset_date": ["Before consent."]},
        )


def _assess_dlt(event: AdverseEvent) -> None:
    """Candidate status from the protocol's DLT definition; an investigator's decision is kept."""
    if event.dlt_status in (AdverseEvent.DltStatus.CONFIRMED, AdverseEvent.DltStatus.REJECTED):
        return
    trial = event.participant.trial
    verdict = dlt.dlt_candidacy(
        grade=event.worst_grade,
        relationship=event.relationship,
        onset=event.onset_date,
        infusion_reaction=event.infusion_reaction,
        window_start=event.participant.dlt_window_start,
        window_end=event.participant.dlt_window_end,
        min_grade=trial.dlt_min_grade,
        min_relationship=trial.dlt_min_relationship,
    )
    event.dlt_status = AdverseEvent.DltStatus.CANDIDATE if verdict.candidate else AdverseEvent.DltStatus.NOT_CANDIDATE
    event.dlt_reason = verdict.reason


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(AE_FIELDS))
    if unknown:
        raise InvalidInput(
            ErrorCode.UNKNOWN_FIELDS, f"Unknown fields: {', '.join(unknown)}.", {k: ["Unknown."] for k in unknown}
        )
    return dict(values)


def adverse_event_record(*, participant: Participant, values: Mapping[str, Any], by) -> AdverseEvent:
    """Record a new adverse event; DLT candidacy, clocks and stopping rules in the same transaction."""
    require_permission(by, "safety.add_adverseevent", "record adverse events")
    values = _coerce(values)
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("trial", "site").get(pk=participant.pk)
        )
        event = AdverseEvent(participant=participant, reported_by=by, **values)
        event.site_aware_at = event.site_aware_at or timezone.now()
        event.information_received_at = event.site_aware_at
        made_serious = _death_is_serious(event)
        _validate(event)
        event.worst_grade = event.grade
        _assess_dlt(event)
        reason = "Adverse event reported" + (DEATH_IS_SERIOUS if made_serious else "")
        audit(event, by=by, reason=reason).save()
        start_reporting_clocks(event, known_at=event.site_aware_at, by=by)
        apply_stopping_rules(event, by=by, new_related_death=is_related_death(event.grade, event.relationship))
    return event


def adverse_event_update(
    *, event: AdverseEvent, values: Mapping[str, Any], reason: str, by, information_received_at: datetime | None = None
) -> AdverseEvent:
    """A follow-up: update the event (history kept), keep the worst grade, re-assess DLT, clocks, stops.

    ``information_received_at`` (default: now) is when the site received this follow-up's information; a
    clock it starts (the event became serious, a SUSAR, fatal or life-threatening) counts from then."""
    if not by.has_perm(cohort_services.CORRECT_LOCKED_DATA):
        require_permission(by, "safety.change_adverseevent", "update adverse events")
    if not reason.strip():
        raise InvalidInput(ErrorCode.REASON_REQUIRED, "Give the reason for this follow-up.", {"reason": ["Required."]})
    values = _coerce(values)
    now = timezone.now()
    received = now if information_received_at is None else information_received_at
    if not isinstance(received, datetime) or received.tzinfo is None:
        raise InvalidInput(
            ErrorCode.INVALID_TIME,
            "When the information was received must be a date and time with its time zone.",
            {"information_received_at": ["Invalid."]},
        )
    if received > now:
        raise InvalidInput(
            ErrorCode.INVALID_TIME,
            "The information cannot be received in the future.",
            {"information_received_at": ["In the future."]},
        )
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",))
            .select_related("participant__trial", "participant__site")
            .get(pk=event.pk)
        )
        reason = cohort_services.data_lock_check(
            participant=event.participant,
            record=event,
            by=by,
            reason=reason,
            perm="safety.change_adverseevent",
            action="update adverse events",
        )
        was_related_death = is_related_death(event.grade, event.relationship)
        for name, value in values.items():
            setattr(event, name, value)
        if received < event.site_aware_at:
            raise InvalidInput(
                ErrorCode.INVALID_TIME,
                "The follow-up information cannot precede the first awareness of the event.",
                {"information_received_at": ["Before awareness."]},
            )
        event.information_received_at = received
        made_serious = _death_is_serious(event)
        _validate(event)
        event.worst_grade = max(event.worst_grade, event.grade)
        _assess_dlt(event)
        audit(event, by=by, reason=reason + (DEATH_IS_SERIOUS if made_serious else "")).save()
        start_reporting_clocks(event, known_at=received, by=by)
        apply_stopping_rules(
            event, by=by, new_related_death=not was_related_death and is_related_death(event.grade, event.relationship)
        )
    return event


def dlt_decide(*, event: AdverseEvent, confirm: bool, reason: str, by) -> AdverseEvent:
    """An investigator confirms or rejects a DLT candidate, with a reason; confirmed DLTs feed escalation."""
    if not by.has_perm(cohort_services.CORRECT_LOCKED_DATA):
        require_permission(by, "safety.decide_dlt", "confirm or reject DLTs (investigators only)")
    if not reason.strip():
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED, "Give the reason for the DLT decision.", {"reason": ["Required."]}
        )
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__trial").get(pk=event.pk)
        )
        audited = cohort_services.data_lock_check(
            participant=event.participant,
            record=event,
            by=by,
            reason=reason,
            perm="safety.decide_dlt",
            action="confirm or reject DLTs (investigators only)",
        )
        if event.dlt_status != AdverseEvent.DltStatus.CANDIDATE:
            raise RuleViolation(
                ErrorCode.NOT_A_DLT_CANDIDATE, f"This event is {event.get_dlt_status_display().lower()}."
            )
        event.dlt_status = AdverseEvent.DltStatus.CONFIRMED if confirm else AdverseEvent.DltStatus.REJECTED
        event.dlt_reason = reason
        event.dlt_decided_by = by
        event.dlt_decided_at = timezone.now()
        audit(event, by=by, reason=f"DLT {'confirmed' if confirm else 'rejected'}: {audited}").save()
        if confirm:
            apply_stopping_rules(event, by=by, new_confirmed_dlt=True)
    return event
