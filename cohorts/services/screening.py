"""Screening data, the eligibility verdict, investigators' judgments and Gilbert's syndrome diagnoses."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cohorts import rules
from cohorts.models import (
    CriterionAssessment,
    Fracture,
    GilbertSyndromeDiagnosis,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)
from cohorts.selectors import eligibility_summary
from cohorts.services.participant_lifecycle import (
    PARTICIPANT_TRANSITIONS,
    ParticipantTransition,
    participant_transition,
)
from core.cleaning import clean_text
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access

SCREENING_STATUSES = (Participant.Status.SCREENING, Participant.Status.ELIGIBLE, Participant.Status.SCREEN_FAILED)


SCREENING_FIELDS = tuple(
    f.name
    for f in ScreeningRecord._meta.get_fields()
    if f.concrete and f.name not in {"id", "participant", "verdict", "evaluated_at"}
)


def screening_record_save(
    *,
    participant: Participant,
    values: Mapping[str, Any],
    fractures: Iterable[Mapping[str, Any]] | None = None,
    by,
    reason: str = "",
) -> ScreeningRecord:
    """Create or update the screening record (and fracture list), then evaluate eligibility.

    ``fractures=None`` keeps the fracture list as it is; a list replaces it.
    """
    require_permission(by, "cohorts.change_participant", "record screening data")
    require_participant_access(by, participant)
    unknown = sorted(set(values) - set(SCREENING_FIELDS))
    if unknown:
        raise InvalidInput(
            ErrorCode.UNKNOWN_FIELDS,
            f"Unknown screening fields: {', '.join(unknown)}.",
            {k: ["Unknown."] for k in unknown},
        )
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.status not in (
            Participant.Status.SCREENING,
            Participant.Status.ELIGIBLE,
            Participant.Status.SCREEN_FAILED,
        ):
            raise RuleViolation(
                ErrorCode.SCREENING_CLOSED,
                f"{participant} is {participant.get_status_display().lower()}: screening data can no longer change.",
            )
        record = ScreeningRecord.objects.filter(participant=participant).first()
        is_new = record is None
        if is_new:
            record = ScreeningRecord(participant=participant)
        elif not reason.strip():
            raise InvalidInput(
                ErrorCode.REASON_REQUIRED, "Give the reason for changing screening data.", {"reason": ["Required."]}
            )
        for name, value in values.items():
            setattr(record, name, value)
        try:
            record.full_clean(exclude=["participant"])
        except ValidationError as exc:
            raise InvalidInput(ErrorCode.INVALID, "Screening data is not valid.", exc.message_dict) from None
        audit(record, by=by, reason=reason or "Screening data entered").save()
        if fractures is not None:
            for old in record.fractures.all():
                audit(old, by=by, reason=reason or "Fracture list replaced").delete()
            for item in fractures:
                fracture = Fracture(screening=record, **item)
                try:
                    fracture.full_clean(exclude=["screening"])
                except ValidationError as exc:
                    raise InvalidInput(
                        ErrorCode.INVALID, "A fracture is not valid.", {"fractures": exc.messages}
                    ) from None
                audit(fracture, by=by, reason=reason or "Fracture recorded").save()
        eligibility_evaluate(participant=participant, by=by)
    record.refresh_from_db()
    return record


def eligibility_evaluate(*, participant: Participant, by=None) -> rules.EligibilityResult:
    """Evaluate every criterion, keep the per-criterion verdicts and move the participant's status.

    Screen failures keep their unmet criteria (CriterionAssessment rows, what SDTM IE needs).
    """
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("trial", "site").get(pk=participant.pk)
        )
        record = ScreeningRecord.objects.filter(participant=participant).first()
        summary = eligibility_summary(participant)
        result = summary.result
        if record is not None:
            record.assessments.all().delete()
            CriterionAssessment.objects.bulk_create(
                CriterionAssessment(
                    screening=record, code=r.code, kind=str(r.kind), verdict=str(r.verdict), reason=r.reason, order=i
                )
                for i, r in enumerate(result.results)
            )
            if result.eligible:
                verdict = ScreeningRecord.Verdict.ELIGIBLE
            elif summary.unmet:
                verdict = ScreeningRecord.Verdict.NOT_ELIGIBLE
            elif summary.missing or summary.consent_missing:
                verdict = ScreeningRecord.Verdict.INCOMPLETE
            else:
                verdict = ScreeningRecord.Verdict.PENDING_JUDGMENT
            record.verdict = verdict
            record.evaluated_at = timezone.now()
            unmet = ", ".join(summary.unmet)
            audit(
                record, by=by, reason=f"Eligibility evaluated: {verdict}" + (f" (unmet: {unmet})" if unmet else "")
            ).save(update_fields=["verdict", "evaluated_at"])
        if participant.status in SCREENING_STATUSES:
            if result.eligible:
                transition = ParticipantTransition.SCREEN_ELIGIBLE
            elif summary.unmet:
                transition = ParticipantTransition.SCREEN_FAIL
            else:
                transition = ParticipantTransition.SCREEN_INCOMPLETE
            new_status = PARTICIPANT_TRANSITIONS[transition][1]
            if new_status != participant.status:
                unmet = ", ".join(summary.unmet)
                participant_transition(
                    participant=participant,
                    transition=transition,
                    by=by,
                    reason=f"Eligibility evaluated: {new_status}" + (f" (unmet: {unmet})" if unmet else ""),
                )
    return result


def judgment_confirm(
    *, participant: Participant, code: str, satisfied: bool, by, note: str = ""
) -> JudgmentConfirmation:
    """An investigator confirms (or not) a criterion that needs judgment; recorded with who and when."""
    return judgments_confirm(participant=participant, answers={code: satisfied}, by=by, note=note)[0]


def judgments_confirm(
    *, participant: Participant, answers: Mapping[str, bool], by, note: str = ""
) -> list[JudgmentConfirmation]:
    """Several judgment criteria confirmed at once (one evaluation afterwards)."""
    require_permission(by, "cohorts.add_judgmentconfirmation", "confirm eligibility judgments (investigators only)")
    require_participant_access(by, participant)
    criteria = {c.code: c for c in participant.trial.criteria.filter(code__in=list(answers))}
    for code in answers:
        if code not in criteria:
            raise InvalidInput(
                ErrorCode.UNKNOWN_CRITERION,
                f"{participant.trial.registry_id} has no criterion {code}.",
                {"code": ["Unknown."]},
            )
        if not criteria[code].needs_judgment:
            raise RuleViolation(
                ErrorCode.NO_JUDGMENT_NEEDED, f"{code} is decided from screening data, not by judgment."
            )
    saved = []
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation(
                ErrorCode.SCREENING_CLOSED,
                f"{participant} is {participant.get_status_display().lower()}: "
                "eligibility judgments can no longer change.",
            )
        existing = {j.code: j for j in JudgmentConfirmation.objects.filter(participant=participant, code__in=answers)}
        for code, satisfied in answers.items():
            confirmation = existing.get(code) or JudgmentConfirmation(participant=participant, code=code)
            reason = "Judgment revised" if confirmation.pk else "Judgment confirmed"
            confirmation.satisfied = satisfied
            confirmation.note = note
            confirmation.confirmed_by = by
            confirmation.confirmed_at = timezone.now()
            audit(confirmation, by=by, reason=reason).save()
            saved.append(confirmation)
        eligibility_evaluate(participant=participant, by=by)
    return saved


def gilbert_diagnosis_record(*, participant: Participant, documented: bool, note: str, by) -> GilbertSyndromeDiagnosis:
    """An investigator documents (or withdraws) a diagnosis of Gilbert's syndrome, with who and when.

    Where the protocol's E14 has ``gilbert_waives_bilirubin``, a documented diagnosis waives its bilirubin
    limit (never AST, ALT or ALP). A second call revises the first. Eligibility is evaluated again in the
    same transaction; after enrollment the diagnosis can no longer change (``screening_closed``).
    """
    what = "record a Gilbert's syndrome diagnosis (investigators only)"
    require_permission(by, "cohorts.add_gilbertsyndromediagnosis", what)
    require_participant_access(by, participant)
    if not isinstance(documented, bool):
        raise InvalidInput(
            ErrorCode.INVALID,
            "Say whether Gilbert's syndrome is documented (true or false).",
            {"documented": ["Not true or false."]},
        )
    note = clean_text(
        note,
        field="note",
        label="Note (what the diagnosis rests on)",
        max_length=2000,
        required=True,
        code=ErrorCode.NOTE_REQUIRED,
    )
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).get(pk=participant.pk)
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation(
                ErrorCode.SCREENING_CLOSED,
                f"{participant} is {participant.get_status_display().lower()}: "
                "her eligibility data can no longer change.",
            )
        diagnosis = GilbertSyndromeDiagnosis.objects.select_for_update().filter(participant=participant).first()
        if diagnosis is None:
            diagnosis = GilbertSyndromeDiagnosis(participant=participant)
        else:
            require_permission(by, "cohorts.change_gilbertsyndromediagnosis", what)
        revised = " (revised)" if diagnosis.pk else ""
        diagnosis.documented = documented
        diagnosis.note = note
        diagnosis.recorded_by = by
        diagnosis.recorded_at = timezone.now()
        reason = (
            "Gilbert's syndrome documented: the E14 bilirubin limit is waived"
            if documented
            else "Gilbert's syndrome not documented: the E14 bilirubin limit applies"
        )
        audit(diagnosis, by=by, reason=reason + revised).save()
        eligibility_evaluate(participant=participant, by=by)
    return diagnosis
