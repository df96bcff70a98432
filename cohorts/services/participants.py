"""Registering a person for screening, correcting her details, withdrawing her, marking her replaced."""

import zoneinfo
from collections.abc import Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from cohorts.selectors import site_today
from cohorts.services.lifecycle import Transition, cohort_transition, transition_allowed
from cohorts.services.participant_lifecycle import ParticipantTransition, participant_transition
from cohorts.services.screening import SCREENING_STATUSES, eligibility_evaluate
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access, require_site_access
from trial.models import Site, Trial


def participant_register(
    *, trial: Trial, site: Site, screening_number: str, date_of_birth: date, sex: str, initials: str = "", by
) -> Participant:
    """Start screening a person: a screening number at a site of the trial."""
    require_permission(by, "cohorts.add_participant", "register participants")
    require_site_access(by, site_id=site.pk, trial_id=site.trial_id)
    if site.trial_id != trial.pk:
        raise InvalidInput(
            ErrorCode.WRONG_SITE, f"Site {site} does not take part in {trial.registry_id}.", {"site": ["Wrong trial."]}
        )
    participant = Participant(
        trial=trial,
        site=site,
        screening_number=screening_number,
        date_of_birth=date_of_birth,
        sex=sex,
        initials=initials,
    )
    for name, value in (("screening_number", screening_number), ("initials", initials)):
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(ErrorCode.INVALID, "Text cannot contain NUL characters.", {name: ["NUL character."]})
    try:
        participant.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(ErrorCode.INVALID, "The participant's details are not valid.", exc.message_dict) from None
    if isinstance(date_of_birth, date) and date_of_birth > timezone.localdate(
        timezone=zoneinfo.ZoneInfo(site.time_zone)
    ):
        raise InvalidInput(
            ErrorCode.INVALID, "The date of birth is in the future.", {"date_of_birth": ["In the future."]}
        )
    # Input is validated first: PostgreSQL refuses a NUL byte even in a lookup.
    if Participant.objects.filter(trial=trial, screening_number=screening_number).exists():
        raise RuleViolation(
            ErrorCode.DUPLICATE_SCREENING_NUMBER,
            f"Screening number {screening_number} is already used in this trial.",
            {"screening_number": ["Already used."]},
        )
    try:
        with transaction.atomic():
            audit(participant, by=by, reason="Screening started").save()
    except IntegrityError:
        raise RuleViolation(
            ErrorCode.DUPLICATE_SCREENING_NUMBER,
            f"Screening number {screening_number} is already used in this trial.",
            {"screening_number": ["Already used."]},
        ) from None
    return participant


PARTICIPANT_EDITABLE = ("initials", "date_of_birth", "sex")


def participant_update(*, participant: Participant, values: Mapping[str, Any], reason: str, by) -> Participant:
    """Correct who the participant is (initials, date of birth, sex) during screening; eligibility is
    evaluated again in the same transaction. After enrollment these no longer change."""
    require_permission(by, "cohorts.change_participant", "correct participant details")
    require_participant_access(by, participant)
    unknown = sorted(set(values) - set(PARTICIPANT_EDITABLE))
    if unknown:
        raise InvalidInput(
            ErrorCode.UNKNOWN_FIELDS,
            f"These cannot be changed here: {', '.join(unknown)}.",
            {k: ["Not editable."] for k in unknown},
        )
    reason = clean_text(
        reason,
        field="reason",
        label="The reason for change",
        max_length=500,
        required=True,
        code=ErrorCode.REASON_REQUIRED,
    )
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).select_related("site").get(pk=participant.pk)
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation(
                ErrorCode.SCREENING_CLOSED,
                f"{participant} is {participant.get_status_display().lower()}: her details can no longer change.",
            )
        for name, value in values.items():
            if isinstance(value, str) and "\x00" in value:
                raise InvalidInput(ErrorCode.INVALID, "Text cannot contain NUL characters.", {name: ["NUL character."]})
            setattr(participant, name, value)
        try:
            participant.full_clean(validate_constraints=False)
        except ValidationError as exc:
            raise InvalidInput(
                ErrorCode.INVALID, "The participant's details are not valid.", exc.message_dict
            ) from None
        if participant.date_of_birth > timezone.localdate(timezone=zoneinfo.ZoneInfo(participant.site.time_zone)):
            raise InvalidInput(
                ErrorCode.INVALID, "The date of birth is in the future.", {"date_of_birth": ["In the future."]}
            )
        audit(participant, by=by, reason=reason).save()
        eligibility_evaluate(participant=participant, by=by)
    participant.refresh_from_db()
    return participant


def participant_withdraw(*, participant: Participant, on: date, reason: str, by) -> Participant:
    require_permission(by, "cohorts.change_participant", "withdraw participants")
    require_participant_access(by, participant)
    if not reason.strip():
        raise InvalidInput(ErrorCode.REASON_REQUIRED, "Give the reason for withdrawal.", {"reason": ["Required."]})
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.COMPLETED):
            raise RuleViolation(
                ErrorCode.CANNOT_WITHDRAW, f"{participant} is {participant.get_status_display().lower()}."
            )
        if on > site_today(participant):
            raise InvalidInput(
                ErrorCode.DATE_IN_FUTURE, "The withdrawal date cannot be in the future.", {"on": ["In the future."]}
            )
        participant_transition(
            participant=participant, transition=ParticipantTransition.WITHDRAW, by=by, reason="", save=False
        )
        participant.withdrawn_on = on
        participant.withdrawal_reason = reason
        audit(participant, by=by, reason=f"Withdrawn: {reason}").save()
    return participant


def participant_mark_replaced(*, participant: Participant, reason: str, by) -> Participant:
    """A non-evaluable participant stays on record, stops counting for DLT, and frees one slot."""
    require_permission(by, "cohorts.change_participant", "mark participants replaced")
    require_participant_access(by, participant)
    if not reason.strip():
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED, "Give the reason the participant is not evaluable.", {"reason": ["Required."]}
        )
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)  # participant, then cohort
        enrollment = Enrollment.objects.filter(participant=participant).select_related("cohort").first()
        if enrollment is None:
            raise RuleViolation(ErrorCode.NOT_ENROLLED, f"{participant} is not enrolled.")
        cohort = Cohort.objects.select_for_update().get(pk=enrollment.cohort_id)
        if participant.replaced:
            raise RuleViolation(ErrorCode.ALREADY_REPLACED, f"{participant} is already marked replaced.")
        if not transition_allowed(cohort, Transition.REPLACE):
            raise RuleViolation(
                ErrorCode.COHORT_NOT_OPEN,
                f"{cohort} is {cohort.get_state_display().lower()}: replacements are only possible before its review.",
            )
        participant.replaced = True
        participant.replacement_reason = reason
        audit(participant, by=by, reason=f"Not evaluable, replaced: {reason}").save()
        cohort_transition(
            cohort=cohort, transition=Transition.REPLACE, by=by, reason=f"Replacement slot opened for {participant}"
        )
    return participant
