"""Every write to participants, screening, consent, cohorts and enrollment.

Each function runs in one transaction, validates first and acts second, and writes its audit rows
(simple-history, with the acting user and the reason) in the same transaction.
"""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts import rules
from cohorts.models import (
    Cohort,
    ConsentDocument,
    ConsentRecord,
    CriterionAssessment,
    Enrollment,
    Fracture,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)
from cohorts.selectors import current_consent, eligibility_summary, site_today
from core.errors import InvalidInput, PermissionDenied, RuleViolation
from core.history import audit
from trial.models import DoseLevel, Site, Trial


def _require(user, perm: str, action: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied("permission_denied", f"Your role does not allow you to {action}.")


# --- screening -----------------------------------------------------------------------------


def participant_register(
    *, trial: Trial, site: Site, screening_number: str, date_of_birth: date, sex: str, initials: str = "", by
) -> Participant:
    """Start screening a person: a screening number at a site of the trial."""
    _require(by, "cohorts.add_participant", "register participants")
    if site.trial_id != trial.pk:
        raise InvalidInput(
            "wrong_site", f"Site {site} does not take part in {trial.registry_id}.", {"site": ["Wrong trial."]}
        )
    if Participant.objects.filter(trial=trial, screening_number=screening_number).exists():
        raise RuleViolation(
            "duplicate_screening_number", f"Screening number {screening_number} is already used in this trial.",
            {"screening_number": ["Already used."]},
        )  # fmt: skip
    participant = Participant(
        trial=trial, site=site, screening_number=screening_number, date_of_birth=date_of_birth, sex=sex,
        initials=initials,
    )  # fmt: skip
    with transaction.atomic():
        audit(participant, by=by, reason="Screening started").save()
    return participant


SCREENING_FIELDS = tuple(
    f.name for f in ScreeningRecord._meta.get_fields()
    if f.concrete and f.name not in {"id", "participant", "verdict", "evaluated_at"}
)  # fmt: skip


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
    _require(by, "cohorts.change_participant", "record screening data")
    unknown = sorted(set(values) - set(SCREENING_FIELDS))
    if unknown:
        raise InvalidInput(
            "unknown_fields", f"Unknown screening fields: {', '.join(unknown)}.", {k: ["Unknown."] for k in unknown}
        )
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.status not in (Participant.Status.SCREENING, Participant.Status.ELIGIBLE,
                                      Participant.Status.SCREEN_FAILED):  # fmt: skip
            raise RuleViolation("screening_closed", f"{participant} is {participant.get_status_display().lower()}: "
                                "screening data can no longer change.")  # fmt: skip
        record = ScreeningRecord.objects.filter(participant=participant).first()
        is_new = record is None
        if is_new:
            record = ScreeningRecord(participant=participant)
        elif not reason.strip():
            raise InvalidInput(
                "reason_required", "Give the reason for changing screening data.", {"reason": ["Required."]}
            )
        for name, value in values.items():
            setattr(record, name, value)
        try:
            record.full_clean(exclude=["participant"])
        except Exception as exc:  # django ValidationError → 400 with field messages
            from django.core.exceptions import ValidationError

            if isinstance(exc, ValidationError):
                raise InvalidInput("invalid", "Screening data is not valid.", exc.message_dict) from None
            raise
        audit(record, by=by, reason=reason or "Screening data entered").save()
        if fractures is not None:
            for old in record.fractures.all():
                audit(old, by=by, reason=reason or "Fracture list replaced").delete()
            for item in fractures:
                fracture = Fracture(screening=record, **item)
                fracture.full_clean(exclude=["screening"])
                audit(fracture, by=by, reason=reason or "Fracture recorded").save()
        eligibility_evaluate(participant=participant, by=by)
    record.refresh_from_db()
    return record


def eligibility_evaluate(*, participant: Participant, by=None) -> rules.EligibilityResult:
    """Evaluate every criterion, keep the per-criterion verdicts and move the participant's status.

    Screen failures keep their unmet criteria (CriterionAssessment rows, what SDTM IE needs).
    """
    with transaction.atomic():
        participant = Participant.objects.select_for_update().select_related("trial", "site").get(pk=participant.pk)
        record = ScreeningRecord.objects.filter(participant=participant).first()
        summary = eligibility_summary(participant)
        result = summary.result
        if record is not None:
            record.assessments.all().delete()
            CriterionAssessment.objects.bulk_create(
                CriterionAssessment(screening=record, code=r.code, kind=str(r.kind), verdict=str(r.verdict),
                                    reason=r.reason, order=i)
                for i, r in enumerate(result.results)
            )  # fmt: skip
            if result.eligible:
                verdict = ScreeningRecord.Verdict.ELIGIBLE
            elif summary.unmet:
                verdict = ScreeningRecord.Verdict.NOT_ELIGIBLE
            elif summary.missing or summary.consent_missing:
                verdict = ScreeningRecord.Verdict.INCOMPLETE
            else:
                verdict = ScreeningRecord.Verdict.PENDING_JUDGMENT
            ScreeningRecord.objects.filter(pk=record.pk).update(verdict=verdict, evaluated_at=timezone.now())
        new_status = participant.status
        if participant.status in (Participant.Status.SCREENING, Participant.Status.ELIGIBLE,
                                  Participant.Status.SCREEN_FAILED):  # fmt: skip
            if result.eligible:
                new_status = Participant.Status.ELIGIBLE
            elif summary.unmet:
                new_status = Participant.Status.SCREEN_FAILED
            else:
                new_status = Participant.Status.SCREENING
        if new_status != participant.status:
            participant.status = new_status
            unmet = ", ".join(summary.unmet)
            audit(
                participant,
                by=by,
                reason=f"Eligibility evaluated: {new_status}" + (f" (unmet: {unmet})" if unmet else ""),
            ).save()
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
    _require(by, "cohorts.add_judgmentconfirmation", "confirm eligibility judgments (investigators only)")
    criteria = {c.code: c for c in participant.trial.criteria.filter(code__in=list(answers))}
    for code in answers:
        if code not in criteria:
            raise InvalidInput(
                "unknown_criterion", f"{participant.trial.registry_id} has no criterion {code}.", {"code": ["Unknown."]}
            )
        if not criteria[code].needs_judgment:
            raise RuleViolation("no_judgment_needed", f"{code} is decided from screening data, not by judgment.")
    saved = []
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
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


# --- consent -------------------------------------------------------------------------------


def consent_record(
    *, participant: Participant, document: ConsentDocument, signed_at: datetime, by, witness_name: str = ""
) -> ConsentRecord:
    _require(by, "cohorts.add_consentrecord", "record consent")
    if document.trial_id != participant.trial_id:
        raise InvalidInput("wrong_trial", "That consent form belongs to another trial.", {"document": ["Wrong trial."]})
    if signed_at > timezone.now():
        raise InvalidInput(
            "signed_in_future", "Consent cannot be signed in the future.", {"signed_at": ["In the future."]}
        )
    signed_on = timezone.localdate(signed_at, timezone=__import__("zoneinfo").ZoneInfo(participant.site.time_zone))
    if signed_on < document.effective_from or (document.effective_to and signed_on > document.effective_to):
        raise RuleViolation(
            "consent_version_not_in_force",
            f"Consent version {document.version} was not in force on {signed_on} "
            f"({document.effective_from} to {document.effective_to or 'now'}).",
        )
    with transaction.atomic():
        record = ConsentRecord(participant=participant, document=document, signed_at=signed_at, obtained_by=by,
                               witness_name=witness_name)  # fmt: skip
        audit(record, by=by, reason=f"Consent v{document.version} signed").save()
        eligibility_evaluate(participant=participant, by=by)
    return record


def consent_withdraw(*, consent: ConsentRecord, withdrawn_at: datetime, reason: str, by) -> ConsentRecord:
    _require(by, "cohorts.change_consentrecord", "record consent withdrawal")
    if not reason.strip():
        raise InvalidInput("reason_required", "Give the reason the consent was withdrawn.", {"reason": ["Required."]})
    with transaction.atomic():
        consent = ConsentRecord.objects.select_for_update().get(pk=consent.pk)
        if consent.withdrawn_at:
            raise RuleViolation("already_withdrawn", "This consent was already withdrawn.")
        if withdrawn_at < consent.signed_at:
            raise InvalidInput("withdrawn_before_signed", "Withdrawal cannot precede the signature.")
        consent.withdrawn_at = withdrawn_at
        consent.withdrawal_reason = reason
        audit(consent, by=by, reason=f"Consent withdrawn: {reason}").save()
        eligibility_evaluate(participant=consent.participant, by=by)
    return consent


# --- cohorts -------------------------------------------------------------------------------


def _open_cohort(*, trial: Trial, dose_level: DoseLevel, by, reason: str) -> Cohort:
    """Create and open the next cohort. Callers have checked the gate; the database holds one-active."""
    sequence = (trial.cohorts.order_by("-sequence").values_list("sequence", flat=True).first() or 0) + 1
    cohort = Cohort(trial=trial, dose_level=dose_level, sequence=sequence, capacity=trial.cohort_size,
                    state=Cohort.State.OPEN, opened_at=timezone.now(), opened_by=by)  # fmt: skip
    try:
        with transaction.atomic():
            audit(cohort, by=by, reason=reason).save()
    except IntegrityError:
        raise RuleViolation("cohort_already_active", "Another cohort of this trial is still active.") from None
    return cohort


def cohort_open_first(*, trial: Trial, by) -> Cohort:
    """Open the trial's first cohort at its lowest dose level (an explicit, permissioned action)."""
    _require(by, "cohorts.open_first_cohort", "open the first cohort")
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=trial.pk)
        if trial.status == Trial.Status.STOPPED:
            raise RuleViolation("trial_stopped", f"{trial.registry_id} is stopped: no cohort can open.")
        if trial.cohorts.exists():
            raise RuleViolation(
                "escalation_decision_required",
                "The first cohort is already open or done. Later cohorts open only through an effective "
                "escalation decision of the safety review committee.",
            )
        lowest = trial.dose_levels.order_by("level").first()
        if lowest is None:
            raise RuleViolation("no_dose_levels", f"{trial.registry_id} has no dose levels.")
        return _open_cohort(trial=trial, dose_level=lowest, by=by, reason="First cohort opened at the lowest dose")


def cohort_open_next(*, trial: Trial, dose_level: DoseLevel, by) -> Cohort:
    """Opening any later cohort needs an effective escalation decision; none can exist without one.

    Safety rule 1: the only path to a later cohort is the safety review gate (safety.services), which
    calls ``_open_cohort`` inside the transaction that makes the decision effective. This entry point
    exists so that the admin, the API and scripts get a clear refusal rather than a way around.
    """
    raise RuleViolation(
        "escalation_decision_required",
        f"Dose level {dose_level.level} can open only through an effective escalation decision signed by the "
        "safety review committee.",
    )


# --- enrollment ----------------------------------------------------------------------------


def enroll_participant(*, participant: Participant, cohort: Cohort, by) -> Enrollment:
    """Enroll an eligible, consented participant into the open cohort; race-free.

    Locks the cohort row, then checks in order: cohort open (not paused), a slot left, eligible with
    judgments confirmed, consent current, same trial and site, not already enrolled. Assigns the study
    ID and slot; the first enrollee is the cohort's sentinel; at capacity the cohort becomes full.
    """
    _require(by, "cohorts.add_enrollment", "enroll participants")
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state == Cohort.State.PAUSED:
            raise RuleViolation("cohort_paused", f"{cohort} is paused: no enrollment until the committee resumes it.")
        if cohort.trial.status == Trial.Status.STOPPED:
            raise RuleViolation("trial_stopped", f"{cohort.trial.registry_id} is stopped: no enrollment.")
        if cohort.state == Cohort.State.FULL or (
            cohort.state == Cohort.State.OPEN and cohort.enrollments.count() >= cohort.capacity
        ):
            raise RuleViolation("cohort_full", f"{cohort} is full ({cohort.capacity} of {cohort.capacity}).")
        if cohort.state != Cohort.State.OPEN:
            raise RuleViolation("cohort_not_open", f"{cohort} is {cohort.get_state_display().lower()}, not open.")
        enrolled = cohort.enrollments.count()
        participant = Participant.objects.select_for_update().select_related("site").get(pk=participant.pk)
        if participant.trial_id != cohort.trial_id:
            raise RuleViolation("wrong_trial", f"{participant} is screened for another trial.")
        if Enrollment.objects.filter(trial=cohort.trial, participant=participant).exists():
            raise RuleViolation("already_enrolled", f"{participant} is already enrolled.")
        summary = eligibility_summary(participant)
        if summary.unmet or summary.missing:
            failing = list(summary.unmet + summary.missing)
            raise RuleViolation(
                "not_eligible",
                f"Screening {participant.screening_number} is not eligible ({', '.join(failing)}).",
                {"criteria": failing},
            )
        if summary.pending_judgment:
            raise RuleViolation(
                "judgment_pending",
                "An investigator must still confirm: " + ", ".join(summary.pending_judgment) + ".",
                {"criteria": list(summary.pending_judgment)},
            )
        if summary.consent_missing or current_consent(participant) is None:
            raise RuleViolation("no_consent", f"Screening {participant.screening_number} has no signed consent "
                                "of the version in force.")  # fmt: skip
        if participant.status != Participant.Status.ELIGIBLE:
            raise RuleViolation("not_eligible", f"{participant} is {participant.get_status_display().lower()}.")
        trial = cohort.trial
        number = Enrollment.objects.filter(trial=trial).count() + 1
        slot = enrolled + 1
        enrollment = Enrollment(
            trial=trial, participant=participant, cohort=cohort, slot=slot, cohort_capacity=cohort.capacity,
            is_sentinel=(slot == 1 and not cohort.enrollments.filter(is_sentinel=True).exists()),
            enrolled_at=timezone.now(), enrolled_by=by,
        )  # fmt: skip
        audit(enrollment, by=by, reason=f"Enrolled into cohort {cohort.sequence}").save()
        participant.study_id = f"{trial.registry_id[-4:]}-{number:03d}"
        participant.status = Participant.Status.ENROLLED
        audit(participant, by=by, reason=f"Enrolled into cohort {cohort.sequence} as {participant.study_id}").save()
        if slot >= cohort.capacity:
            cohort.state = Cohort.State.FULL
            audit(cohort, by=by, reason="Cohort full").save()
    return enrollment


def participant_withdraw(*, participant: Participant, on: date, reason: str, by) -> Participant:
    _require(by, "cohorts.change_participant", "withdraw participants")
    if not reason.strip():
        raise InvalidInput("reason_required", "Give the reason for withdrawal.", {"reason": ["Required."]})
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.COMPLETED):
            raise RuleViolation("cannot_withdraw", f"{participant} is {participant.get_status_display().lower()}.")
        if on > site_today(participant):
            raise InvalidInput(
                "date_in_future", "The withdrawal date cannot be in the future.", {"on": ["In the future."]}
            )
        participant.status = Participant.Status.WITHDRAWN
        participant.withdrawn_on = on
        participant.withdrawal_reason = reason
        audit(participant, by=by, reason=f"Withdrawn: {reason}").save()
    return participant


def participant_mark_replaced(*, participant: Participant, reason: str, by) -> Participant:
    """A non-evaluable participant stays on record, stops counting for DLT, and frees one slot."""
    _require(by, "cohorts.change_participant", "mark participants replaced")
    if not reason.strip():
        raise InvalidInput(
            "reason_required", "Give the reason the participant is not evaluable.", {"reason": ["Required."]}
        )
    with transaction.atomic():
        enrollment = Enrollment.objects.filter(participant=participant).select_related("cohort").first()
        if enrollment is None:
            raise RuleViolation("not_enrolled", f"{participant} is not enrolled.")
        cohort = Cohort.objects.select_for_update().get(pk=enrollment.cohort_id)
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.replaced:
            raise RuleViolation("already_replaced", f"{participant} is already marked replaced.")
        if cohort.state not in (Cohort.State.OPEN, Cohort.State.FULL, Cohort.State.OBSERVING):
            raise RuleViolation("cohort_not_open", f"{cohort} is {cohort.get_state_display().lower()}: "
                                "replacements are only possible before its review.")  # fmt: skip
        participant.replaced = True
        participant.replacement_reason = reason
        audit(participant, by=by, reason=f"Not evaluable, replaced: {reason}").save()
        cohort.capacity += 1
        if cohort.state in (Cohort.State.FULL, Cohort.State.OBSERVING):
            cohort.state = Cohort.State.OPEN
        audit(cohort, by=by, reason=f"Replacement slot opened for {participant}").save()
    return participant
