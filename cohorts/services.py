"""Every write to participants, screening, consent, cohorts and enrollment.

Each function runs in one transaction, validates first and acts second, and writes its audit rows
(simple-history, with the acting user and the reason) in the same transaction.
"""

import re
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts import rules, selectors
from cohorts.models import (
    IMPLAUSIBLE_RATE_FACTOR,
    VITAL_RANGES,
    Cohort,
    ConsentDocument,
    ConsentRecord,
    CriterionAssessment,
    DripRateReading,
    Enrollment,
    FollowUpVisit,
    Fracture,
    GilbertSyndromeDiagnosis,
    Infusion,
    InfusionInterruption,
    JudgmentConfirmation,
    Participant,
    ProtocolDeviation,
    ScreeningRecord,
    VitalSigns,
    average_drip_rate,
    dose_within_tolerance,
    ml_per_hour,
)
from cohorts.selectors import current_consent, eligibility_summary, site_today
from core.errors import InvalidInput, RuleViolation, require_permission
from core.history import audit
from trial.models import DoseLevel, Site, Trial, format_cells

SCREENING_STATUSES = (Participant.Status.SCREENING, Participant.Status.ELIGIBLE, Participant.Status.SCREEN_FAILED)


_require = require_permission


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
    participant = Participant(
        trial=trial, site=site, screening_number=screening_number, date_of_birth=date_of_birth, sex=sex,
        initials=initials,
    )  # fmt: skip
    for name, value in (("screening_number", screening_number), ("initials", initials)):
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput("invalid", "Text cannot contain NUL characters.", {name: ["NUL character."]})
    try:
        participant.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("invalid", "The participant's details are not valid.", exc.message_dict) from None
    if isinstance(date_of_birth, date) and date_of_birth > timezone.localdate(
        timezone=zoneinfo.ZoneInfo(site.time_zone)
    ):
        raise InvalidInput("invalid", "The date of birth is in the future.", {"date_of_birth": ["In the future."]})
    # Input is validated first: PostgreSQL refuses a NUL byte even in a lookup.
    if Participant.objects.filter(trial=trial, screening_number=screening_number).exists():
        raise RuleViolation(
            "duplicate_screening_number", f"Screening number {screening_number} is already used in this trial.",
            {"screening_number": ["Already used."]},
        )  # fmt: skip
    try:
        with transaction.atomic():
            audit(participant, by=by, reason="Screening started").save()
    except IntegrityError:
        raise RuleViolation(
            "duplicate_screening_number", f"Screening number {screening_number} is already used in this trial.",
            {"screening_number": ["Already used."]},
        ) from None  # fmt: skip
    return participant


PARTICIPANT_EDITABLE = ("initials", "date_of_birth", "sex")


def participant_update(*, participant: Participant, values: Mapping[str, Any], reason: str, by) -> Participant:
    """Correct who the participant is (initials, date of birth, sex) during screening; eligibility is
    evaluated again in the same transaction. After enrollment these no longer change."""
    _require(by, "cohorts.change_participant", "correct participant details")
    unknown = sorted(set(values) - set(PARTICIPANT_EDITABLE))
    if unknown:
        raise InvalidInput("unknown_fields", f"These cannot be changed here: {', '.join(unknown)}.",
                           {k: ["Not editable."] for k in unknown})  # fmt: skip
    reason = _text(reason, field="reason", label="The reason for change", max_length=500, required=True,
                   code="reason_required")  # fmt: skip
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).select_related("site").get(pk=participant.pk)
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation("screening_closed", f"{participant} is {participant.get_status_display().lower()}: "
                                "her details can no longer change.")  # fmt: skip
        for name, value in values.items():
            if isinstance(value, str) and "\x00" in value:
                raise InvalidInput("invalid", "Text cannot contain NUL characters.", {name: ["NUL character."]})
            setattr(participant, name, value)
        try:
            participant.full_clean(validate_constraints=False)
        except ValidationError as exc:
            raise InvalidInput("invalid", "The participant's details are not valid.", exc.message_dict) from None
        if participant.date_of_birth > timezone.localdate(timezone=zoneinfo.ZoneInfo(participant.site.time_zone)):
            raise InvalidInput("invalid", "The date of birth is in the future.", {"date_of_birth": ["In the future."]})
        audit(participant, by=by, reason=reason).save()
        eligibility_evaluate(participant=participant, by=by)
    participant.refresh_from_db()
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
        except ValidationError as exc:
            raise InvalidInput("invalid", "Screening data is not valid.", exc.message_dict) from None
        audit(record, by=by, reason=reason or "Screening data entered").save()
        if fractures is not None:
            for old in record.fractures.all():
                audit(old, by=by, reason=reason or "Fracture list replaced").delete()
            for item in fractures:
                fracture = Fracture(screening=record, **item)
                try:
                    fracture.full_clean(exclude=["screening"])
                except ValidationError as exc:
                    raise InvalidInput("invalid", "A fracture is not valid.", {"fractures": exc.messages}) from None
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
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation("screening_closed", f"{participant} is {participant.get_status_display().lower()}: "
                                "eligibility judgments can no longer change.")  # fmt: skip
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
    _require(by, "cohorts.add_gilbertsyndromediagnosis", what)
    if not isinstance(documented, bool):
        raise InvalidInput("invalid", "Say whether Gilbert's syndrome is documented (true or false).",
                           {"documented": ["Not true or false."]})  # fmt: skip
    note = _text(note, field="note", label="Note (what the diagnosis rests on)", max_length=2000,
                 required=True, code="note_required")  # fmt: skip
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).get(pk=participant.pk)
        if participant.status not in SCREENING_STATUSES:
            raise RuleViolation("screening_closed", f"{participant} is {participant.get_status_display().lower()}: "
                                "her eligibility data can no longer change.")  # fmt: skip
        diagnosis = GilbertSyndromeDiagnosis.objects.select_for_update().filter(participant=participant).first()
        if diagnosis is None:
            diagnosis = GilbertSyndromeDiagnosis(participant=participant)
        else:
            _require(by, "cohorts.change_gilbertsyndromediagnosis", what)
        revised = " (revised)" if diagnosis.pk else ""
        diagnosis.documented = documented
        diagnosis.note = note
        diagnosis.recorded_by = by
        diagnosis.recorded_at = timezone.now()
        reason = ("Gilbert's syndrome documented: the E14 bilirubin limit is waived" if documented
                  else "Gilbert's syndrome not documented: the E14 bilirubin limit applies")  # fmt: skip
        audit(diagnosis, by=by, reason=reason + revised).save()
        eligibility_evaluate(participant=participant, by=by)
    return diagnosis


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
    signed_on = timezone.localdate(signed_at, timezone=zoneinfo.ZoneInfo(participant.site.time_zone))
    if signed_on < document.effective_from or (document.effective_to and signed_on > document.effective_to):
        raise RuleViolation(
            "consent_version_not_in_force",
            f"Consent version {document.version} was not in force on {signed_on} "
            f"({document.effective_from} to {document.effective_to or 'now'}).",
        )
    with transaction.atomic():
        witness_name = _text(witness_name, field="witness_name", label="The witness's name", max_length=120)
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

    Locks the participant row (so her screening, judgments and consent hold still), evaluates her
    eligibility, and only then locks the cohort row, for as short a time as possible: check, take the
    next slot, insert. Participant first, cohort second: the lock order of every service.
    Refusals come in this order: cohort paused / trial stopped, cohort full, cohort not open, another
    trial, already enrolled, not eligible, judgment pending, no consent. Assigns the study ID and slot;
    the first enrollee is the cohort's sentinel; at capacity the cohort becomes full.
    """
    _require(by, "cohorts.add_enrollment", "enroll participants")
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("site", "trial").get(pk=participant.pk)
        )
        summary = eligibility_summary(participant)
        consent_ok = not summary.consent_missing and current_consent(participant) is not None
        already_enrolled = Enrollment.objects.filter(participant=participant).exists()

        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state == Cohort.State.PAUSED:
            raise RuleViolation("cohort_paused", f"{cohort} is paused: no enrollment until the committee resumes it.")
        if cohort.trial.status == Trial.Status.STOPPED:
            raise RuleViolation("trial_stopped", f"{cohort.trial.registry_id} is stopped: no enrollment.")
        enrolled = cohort.enrollments.count()
        if cohort.state == Cohort.State.FULL or (cohort.state == Cohort.State.OPEN and enrolled >= cohort.capacity):
            raise RuleViolation("cohort_full", f"{cohort} is full ({cohort.capacity} of {cohort.capacity}).")
        if cohort.state != Cohort.State.OPEN:
            raise RuleViolation("cohort_not_open", f"{cohort} is {cohort.get_state_display().lower()}, not open.")
        if participant.trial_id != cohort.trial_id:
            raise RuleViolation("wrong_trial", f"{participant} is screened for another trial.")
        if already_enrolled:
            raise RuleViolation("already_enrolled", f"{participant} is already enrolled.")
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
        if not consent_ok:
            raise RuleViolation("no_consent", f"Screening {participant.screening_number} has no signed consent "
                                "of the version in force.")  # fmt: skip
        if participant.status != Participant.Status.ELIGIBLE:
            raise RuleViolation("not_eligible", f"{participant} is {participant.get_status_display().lower()}.")
        trial = cohort.trial
        # One active cohort per trial, so the cohort lock also serialises the trial's study ID numbers.
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
        participant = Participant.objects.select_for_update().get(pk=participant.pk)  # participant, then cohort
        enrollment = Enrollment.objects.filter(participant=participant).select_related("cohort").first()
        if enrollment is None:
            raise RuleViolation("not_enrolled", f"{participant} is not enrolled.")
        cohort = Cohort.objects.select_for_update().get(pk=enrollment.cohort_id)
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


# --- infusion (DESIGN rules 4 and 5) ---------------------------------------------------------------
#
# Input is checked first (InvalidInput, 400, nothing saved), then the rules under the cohort's row
# lock (RuleViolation, 409), then the writes with their audit rows, all in one transaction.

CLOCK_SKEW = timedelta(minutes=2)  # a bedside device's clock may run slightly ahead of the server's
MAX_CELLS = 2**63 - 1  # PositiveBigIntegerField: a larger count is refused, never an overflow
DROP_FACTOR_RANGE = (1, 100)  # drops/mL: macro sets 10–20, micro sets 60


def _text(value, *, field: str, label: str, max_length: int, required: bool = False, code: str = "invalid") -> str:
    if not isinstance(value, str):
        raise InvalidInput(code, f"{label} must be text.", {field: ["Not text."]})
    if "\x00" in value:
        raise InvalidInput(code, f"{label} contains a NUL character.", {field: ["Contains a NUL character."]})
    value = value.strip()
    if required and not value:
        raise InvalidInput(code, f"Give the {label.lower()}.", {field: ["Required."]})
    if len(value) > max_length:
        raise InvalidInput(code, f"{label} is longer than {max_length} characters.", {field: ["Too long."]})
    return value


def _decimal(value, *, field: str, label: str, unit: str, max_digits: int, places: int, code: str) -> Decimal:
    """A finite Decimal with at most ``places`` decimals that fits ``max_digits``; anything else is refused."""
    bad = InvalidInput(code, f"{label} must be a number in {unit}, e.g. 22.", {field: ["Not a number."]})
    if isinstance(value, bool) or value is None:
        raise bad
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise bad
        value = value.strip()
    if not isinstance(value, str | int | Decimal):
        raise bad
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise bad from None
    if not number.is_finite():
        raise bad
    if abs(number) >= Decimal(10) ** (max_digits - places):
        raise InvalidInput(code, f"{label} {value} {unit} is not a plausible value.", {field: ["Too large."]})
    rounded = number.quantize(Decimal(1).scaleb(-places))
    if rounded != number:
        raise InvalidInput(code, f"{label} has more than {places} decimal place(s).", {field: ["Too precise."]})
    return rounded


def _plain(number: Decimal) -> str:
    """20.00 → "20", 19.90 → "19.9": a number as a person writes it."""
    return format(number.normalize(), "f")


def _rate(value) -> Decimal:
    rate = _decimal(value, field="drops_per_minute", label="The drip rate", unit="drops/min", max_digits=6, places=2,
                    code="invalid_rate")  # fmt: skip
    if rate <= 0:
        raise InvalidInput(
            "rate_not_positive", f"The drip rate must be a positive number of drops/min, not {rate}.",
            {"drops_per_minute": ["Must be more than 0."]},
        )  # fmt: skip
    return rate


def _volume(value, *, field: str = "volume_ml") -> Decimal:
    volume = _decimal(value, field=field, label="The volume", unit="mL", max_digits=7, places=1, code="invalid_volume")
    if volume < 0:
        raise InvalidInput("volume_negative", f"The volume cannot be negative ({volume} mL).", {field: ["Negative."]})
    return volume


def _cells(value, *, field: str, allow_zero: bool = False) -> int:
    """An exact cell count: an int (or a string of ASCII digits); floats are refused (they are not exact)."""
    bad = InvalidInput("invalid_cells", "The cell count must be a whole number, e.g. 60000000.", {field: ["Invalid."]})
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,25}", value.strip()):
            raise bad
        value = int(value.strip())
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int):
        raise bad
    if value < (0 if allow_zero else 1) or value > MAX_CELLS:
        raise InvalidInput(
            "invalid_cells", f"The cell count must be between {0 if allow_zero else 1} and {MAX_CELLS}.",
            {field: ["Out of range."]},
        )  # fmt: skip
    return value


def _moment(value, *, field: str, label: str, allow_future: bool = False) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("invalid", f"{label} must be a date and time with its time zone.", {field: ["Invalid."]})
    if not allow_future and value > timezone.now() + CLOCK_SKEW:
        raise InvalidInput("date_in_future", f"{label} cannot be in the future.", {field: ["In the future."]})
    return value


def _drop_factor(value) -> int:
    low, high = DROP_FACTOR_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            "invalid_drop_factor", f"The giving set's drop factor must be a whole number of drops/mL from {low} to "
            f"{high} (e.g. 20, or 60 for a micro-drip set).", {"drop_factor": ["Invalid."]},
        )  # fmt: skip
    return value


def _flag(value, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("invalid", f"{field} must be true or false.", {field: ["Not true or false."]})
    return value


VITAL_FIELDS = tuple(VITAL_RANGES)


def _vitals(values: Mapping[str, Any] | None, *, field: str) -> dict[str, Any]:
    """Plausible vital signs (each optional, at least one); a typing error is refused, not saved."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput("invalid_vitals", "Vital signs must be a set of named measures.", {field: ["Invalid."]})
    unknown = sorted(set(values) - {*VITAL_FIELDS, "measured_at"})
    if unknown:
        raise InvalidInput("invalid_vitals", f"Unknown vital signs: {', '.join(unknown)}.", {field: unknown})
    cleaned: dict[str, Any] = {}
    for name, (low, high) in VITAL_RANGES.items():
        raw = values.get(name)
        if raw is None or raw == "":
            continue
        places = 1 if name == "temperature_c" else 0
        number = _decimal(raw, field=f"{field}.{name}", label=name.replace("_", " ").capitalize(), unit="",
                          max_digits=4 if places else 3, places=places, code="invalid_vitals")  # fmt: skip
        if not low <= number <= high:
            raise InvalidInput(
                "invalid_vitals", f"{name.replace('_', ' ').capitalize()} {number} is outside {low}–{high}.",
                {f"{field}.{name}": ["Not plausible."]},
            )  # fmt: skip
        cleaned[name] = number if places else int(number)
    if not cleaned:
        raise InvalidInput("invalid_vitals", "Give at least one vital sign.", {field: ["Empty."]})
    systolic, diastolic = cleaned.get("systolic_bp"), cleaned.get("diastolic_bp")
    if systolic is not None and diastolic is not None and systolic <= diastolic:
        raise InvalidInput(
            "invalid_vitals", f"Blood pressure {systolic}/{diastolic}: the systolic must be above the diastolic.",
            {f"{field}.systolic_bp": ["Not above the diastolic."]},
        )  # fmt: skip
    if values.get("measured_at") is not None:
        cleaned["measured_at"] = _moment(values["measured_at"], field=f"{field}.measured_at", label="Measured at")
    return cleaned


def _save_vitals(*, infusion: Infusion, timepoint: str, values: dict[str, Any], at: datetime, by) -> VitalSigns:
    measured_at = values.pop("measured_at", at)
    vitals = VitalSigns(infusion=infusion, timepoint=timepoint, measured_at=measured_at, recorded_by=by, **values)
    audit(vitals, by=by, reason=f"Vital signs {timepoint} the infusion").save()
    return vitals


def _system_deviation(
    *, participant: Participant, category: str, severity: str, description: str, occurred_on: date, by, **links
) -> ProtocolDeviation:
    """A deviation opened by an automatic check, in the transaction of the record that triggered it."""
    deviation = ProtocolDeviation(
        trial_id=participant.trial_id, participant=participant, category=category, severity=severity,
        description=description, source=ProtocolDeviation.Source.SYSTEM, occurred_on=occurred_on,
        detected_at=timezone.now(), **links,
    )  # fmt: skip
    audit(deviation, by=by, reason=f"Opened automatically: {category.replace('_', ' ')}").save()
    return deviation


def _locked_cohort(pk: int) -> Cohort:
    """The cohort row, locked: two nurses cannot start two infusions of one cohort at once."""
    return Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=pk)


def _lock_participant(pk: int) -> None:
    list(Participant.objects.select_for_update(of=("self",)).filter(pk=pk).values_list("pk", flat=True))


def _lock_infusion(infusion: Infusion) -> tuple[Cohort, Infusion]:
    """Lock the participant, the cohort, then the infusion. Every service takes row locks in the order
    participant → cohort → infusion / review (the trial row first when a service needs it), so two
    services can never wait for each other's locks."""
    _lock_participant(infusion.participant_id)
    cohort = _locked_cohort(infusion.cohort_id)
    infusion = (
        Infusion.objects.select_for_update(of=("self",))
        .select_related("trial", "dose_level", "participant__site")
        .get(pk=infusion.pk)
    )
    return cohort, infusion


def infusion_start(
    *,
    participant: Participant,
    by,
    started_at: datetime,
    product_lot: str,
    product_expiry: datetime,
    cells_planned: int | None = None,
    drop_factor: int | None = None,
    volume_ml: Decimal | str | int | None = None,
    premedication: str = "",
    vitals_before: Mapping[str, Any] | None = None,
) -> Infusion:
    """Start the infusion of an enrolled participant, race-free (the cohort row is locked).

    Refuses with ``not_enrolled``, ``cohort_paused``, ``trial_stopped``, ``cohort_not_open``,
    ``already_infused``, ``no_consent``, ``product_expired``, ``dose_mismatch`` (the product's cells are
    outside the tolerance of the cohort's dose level), ``sentinel_hold`` or ``stagger_hold``.
    """
    _require(by, "cohorts.add_infusion", "record infusions")
    started_at = _moment(started_at, field="started_at", label="The start")
    product_lot = _text(product_lot, field="product_lot", label="Product lot", max_length=60, required=True)
    product_expiry = _moment(product_expiry, field="product_expiry", label="The product expiry", allow_future=True)
    premedication = _text(premedication, field="premedication", label="Premedication", max_length=2000)
    planned_volume = None if volume_ml in (None, "") else _volume(volume_ml, field="volume_ml")
    if drop_factor is not None:
        drop_factor = _drop_factor(drop_factor)
    if cells_planned is not None:
        cells_planned = _cells(cells_planned, field="cells_planned")
    vitals = _vitals(vitals_before, field="vitals_before")

    with transaction.atomic():
        enrollment = Enrollment.objects.filter(participant=participant).first()
        if enrollment is None:
            raise RuleViolation("not_enrolled", f"{participant} is not enrolled in a cohort: no infusion.")
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("site", "trial").get(pk=participant.pk)
        )
        cohort = _locked_cohort(enrollment.cohort_id)  # participant first, then cohort (the lock order)
        trial = cohort.trial
        if participant.replaced:
            raise RuleViolation("not_enrolled", f"{participant} is marked replaced (not evaluable): no infusion.")
        if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.LOST_TO_FOLLOW_UP,
                                  Participant.Status.COMPLETED):  # fmt: skip
            raise RuleViolation("not_enrolled", f"{participant} is {participant.get_status_display().lower()}: "
                                "no infusion.")  # fmt: skip
        if cohort.state == Cohort.State.PAUSED:
            raise RuleViolation("cohort_paused", f"{cohort} is paused by a stopping rule: no infusion until the "
                                "safety review committee resumes it.")  # fmt: skip
        if trial.status == Trial.Status.STOPPED:
            raise RuleViolation("trial_stopped", f"{trial.registry_id} is stopped: no infusion.")
        if cohort.state not in (Cohort.State.OPEN, Cohort.State.FULL):
            raise RuleViolation("cohort_not_open", f"{cohort} is {cohort.get_state_display().lower()}: no infusion.")
        given = list(participant.infusions.order_by("sequence"))
        if len(given) >= trial.max_infusions_per_participant:
            raise RuleViolation(
                "already_infused", f"{participant} already had {len(given)} infusion(s); the protocol allows "
                f"{trial.max_infusions_per_participant}.",
            )  # fmt: skip
        if any(i.status == Infusion.Status.IN_PROGRESS for i in given):
            raise RuleViolation("infusion_in_progress", f"{participant} has an infusion in progress.")
        zone = selectors.site_zone(participant)
        if started_at < enrollment.enrolled_at:
            raise InvalidInput(
                "started_before_enrollment", "The infusion cannot start before the enrollment "
                f"({selectors.format_site_time(enrollment.enrolled_at, zone)}).", {"started_at": ["Too early."]},
            )  # fmt: skip
        if current_consent(participant, on=timezone.localdate(started_at, timezone=zone)) is None:
            raise RuleViolation("no_consent", f"{participant} has no current signed consent of the version in force: "
                                "no infusion.")  # fmt: skip
        if started_at > product_expiry:
            raise RuleViolation(
                "product_expired", f"Product lot {product_lot} expired at "
                f"{selectors.format_site_time(product_expiry, zone)}: it must not be given.",
                {"product_expiry": ["Expired."]},
            )  # fmt: skip
        dose = cohort.dose_level
        cells_planned = dose.cells if cells_planned is None else cells_planned
        if not dose_within_tolerance(cells=cells_planned, target=dose.cells, tolerance_pct=trial.dose_tolerance_pct):
            raise RuleViolation(
                "dose_mismatch", f"The product holds {format_cells(cells_planned)} cells; cohort {cohort.sequence} "
                f"gives {dose.label} ({dose.cells_display}) ± {trial.dose_tolerance_pct}%.",
                {"cells_planned": ["Does not match the dose level."]},
            )  # fmt: skip
        hold = selectors.infusion_hold(participant=participant, at=started_at, cohort=cohort)
        if hold is not None:
            raise RuleViolation(hold.code, hold.message, {"started_at": [hold.message]})
        infusion = Infusion(
            trial=trial, participant=participant, cohort=cohort, dose_level=dose, sequence=len(given) + 1,
            max_infusions=trial.max_infusions_per_participant, status=Infusion.Status.IN_PROGRESS,
            cells_planned=cells_planned, product_lot=product_lot, product_expiry=product_expiry,
            started_at=started_at, volume_planned_ml=planned_volume,
            drop_factor=drop_factor or trial.default_drop_factor, premedication=premedication, administered_by=by,
        )  # fmt: skip
        try:
            with transaction.atomic():
                audit(infusion, by=by, reason=f"Infusion started (lot {product_lot})").save()
        except IntegrityError:
            raise RuleViolation(
                "stagger_hold", f"Another infusion of cohort {cohort.sequence} is in progress."
            ) from None
        if vitals:
            _save_vitals(infusion=infusion, timepoint=VitalSigns.Timepoint.BEFORE, values=vitals, at=started_at, by=by)
    return infusion


def drip_rate_record(*, infusion: Infusion, observed_at: datetime, drops_per_minute, by) -> DripRateReading:
    """Record a drip rate as observed. Outside [min, max] it is saved, flagged, and a deviation opens
    (category infusion rate, linked to the reading): major when faster than the maximum (the safety
    direction for a cell product), minor when slower. A rate that is not a positive number is refused."""
    _require(by, "cohorts.add_dripratereading", "record drip rates")
    rate = _rate(drops_per_minute)
    observed_at = _moment(observed_at, field="observed_at", label="The observation time")
    with transaction.atomic():
        _, infusion = _lock_infusion(infusion)
        if infusion.status == Infusion.Status.PLANNED:
            raise RuleViolation("infusion_not_in_progress", "This infusion has not started.")
        if observed_at < infusion.started_at or (infusion.ended_at and observed_at > infusion.ended_at):
            raise InvalidInput(
                "observed_outside_infusion", "The rate must be observed between the start and the end of the infusion.",
                {"observed_at": ["Outside the infusion."]},
            )  # fmt: skip
        trial = infusion.trial
        low, high = trial.infusion_rate_min, trial.infusion_rate_max
        reading = DripRateReading(
            infusion=infusion, observed_at=observed_at, drops_per_minute=rate, rate_min=low, rate_max=high,
            out_of_range=not (low <= rate <= high), recorded_by=by,
        )  # fmt: skip
        audit(reading, by=by, reason="Drip rate observed" + (" (outside the protocol)" if reading.out_of_range else "")
              ).save()  # fmt: skip
        if reading.out_of_range:
            zone = selectors.site_zone(infusion.participant)
            direction = "faster than" if rate > high else "slower than"
            _system_deviation(
                participant=infusion.participant, category=ProtocolDeviation.Category.INFUSION_RATE,
                severity=ProtocolDeviation.Severity.MAJOR if rate > high else ProtocolDeviation.Severity.MINOR,
                description=f"Drip rate {_plain(rate)} drops/min ({ml_per_hour(rate, infusion.drop_factor)} mL/h "
                f"with a {infusion.drop_factor} drops/mL set) at {selectors.format_site_time(observed_at, zone)} is "
                f"{direction} the protocol's {_plain(low)}–{_plain(high)} drops/min.",
                occurred_on=timezone.localdate(observed_at, timezone=zone), by=by, infusion=infusion,
                drip_rate_reading=reading,
            )  # fmt: skip
    return reading


def vital_signs_record(
    *, infusion: Infusion, timepoint: str, values: Mapping[str, Any], by, measured_at: datetime | None = None
) -> VitalSigns:
    _require(by, "cohorts.add_vitalsigns", "record vital signs")
    if timepoint not in VitalSigns.Timepoint.values:
        raise InvalidInput("invalid_vitals", f"Unknown time point {timepoint!r}.", {"timepoint": ["Invalid."]})
    vitals = _vitals(values, field="vitals")
    measured_at = _moment(measured_at or vitals.get("measured_at") or timezone.now(), field="measured_at",
                          label="Measured at")  # fmt: skip
    vitals.pop("measured_at", None)
    with transaction.atomic():
        _, infusion = _lock_infusion(infusion)
        return _save_vitals(infusion=infusion, timepoint=timepoint, values=vitals, at=measured_at, by=by)


def infusion_interrupt(*, infusion: Infusion, stopped_at: datetime, reason: str, by) -> InfusionInterruption:
    _require(by, "cohorts.add_infusioninterruption", "record infusion interruptions")
    stopped_at = _moment(stopped_at, field="stopped_at", label="The interruption")
    reason = _text(reason, field="reason", label="Reason", max_length=2000, required=True, code="reason_required")
    with transaction.atomic():
        _, infusion = _lock_infusion(infusion)
        if infusion.status != Infusion.Status.IN_PROGRESS:
            raise RuleViolation("infusion_not_in_progress", f"The infusion is {infusion.get_status_display().lower()}.")
        interruptions = list(infusion.interruptions.all())
        if any(i.restarted_at is None for i in interruptions):
            raise RuleViolation("infusion_interrupted", "The infusion is already interrupted: resume it first.")
        earliest = max([infusion.started_at, *(i.restarted_at for i in interruptions)])
        if stopped_at < earliest:
            raise InvalidInput("end_before_start", "The interruption cannot precede the start or the last restart.",
                               {"stopped_at": ["Too early."]})  # fmt: skip
        interruption = InfusionInterruption(infusion=infusion, stopped_at=stopped_at, reason=reason, recorded_by=by)
        audit(interruption, by=by, reason=f"Infusion interrupted: {reason}").save()
    return interruption


def infusion_resume(*, infusion: Infusion, restarted_at: datetime, by) -> InfusionInterruption:
    _require(by, "cohorts.change_infusioninterruption", "record infusion restarts")
    restarted_at = _moment(restarted_at, field="restarted_at", label="The restart")
    with transaction.atomic():
        _, infusion = _lock_infusion(infusion)
        interruption = infusion.interruptions.select_for_update().filter(restarted_at__isnull=True).first()
        if infusion.status != Infusion.Status.IN_PROGRESS or interruption is None:
            raise RuleViolation("not_interrupted", "The infusion is not interrupted.")
        if restarted_at < interruption.stopped_at:
            raise InvalidInput("end_before_start", "The restart cannot precede the interruption.",
                               {"restarted_at": ["Before the interruption."]})  # fmt: skip
        interruption.restarted_at = restarted_at
        audit(interruption, by=by, reason="Infusion restarted").save()
    return interruption


def infusion_complete(
    *,
    infusion: Infusion,
    ended_at: datetime,
    cells_administered: int,
    volume_ml: Decimal | str | int,
    vitals_after: Mapping[str, Any] | None = None,
    confirm_implausible_rate: bool = False,
    by,
) -> Infusion:
    """Finish the infusion as given. In the same transaction: the average-rate check (see
    ``_infusion_finish``), the dose check (outside the tolerance: saved, and a major deviation opens),
    the participant's DLT window and status, her follow-up visits, and the cohort to observing when it
    was its last infusion. A completed infusion gave the product: its volume must be more than 0 mL."""
    _require(by, "cohorts.change_infusion", "record infusions")
    ended_at = _moment(ended_at, field="ended_at", label="The end")
    cells = _cells(cells_administered, field="cells_administered")
    volume = _volume(volume_ml)
    if volume == 0:
        raise InvalidInput(
            "volume_not_given", "A completed infusion gave the product: the volume given must be more than 0 mL. "
            "If nothing was given, record the infusion as stopped early.", {"volume_ml": ["Must be more than 0."]},
        )  # fmt: skip
    vitals = _vitals(vitals_after, field="vitals_after")
    confirmed = _flag(confirm_implausible_rate, field="confirm_implausible_rate")
    with transaction.atomic():
        cohort, infusion = _lock_infusion(infusion)
        if infusion.interruptions.filter(restarted_at__isnull=True).exists():
            raise RuleViolation("infusion_interrupted", "The infusion is interrupted: resume it, or stop it early.")
        return _infusion_finish(cohort=cohort, infusion=infusion, status=Infusion.Status.COMPLETED, ended_at=ended_at,
                                cells=cells, volume=volume, vitals=vitals, reason="", confirmed=confirmed,
                                by=by)  # fmt: skip


def infusion_stop_early(
    *,
    infusion: Infusion,
    ended_at: datetime,
    reason: str,
    cells_administered: int,
    volume_ml: Decimal | str | int,
    vitals_after: Mapping[str, Any] | None = None,
    confirm_implausible_rate: bool = False,
    by,
) -> Infusion:
    """Stop the infusion before the product is given in full (e.g. an infusion reaction).

    The participant was exposed: as on completion, her DLT window starts and her visits are planned;
    the average rate is checked when anything was given, and the dose check opens a major deviation
    when what was given is outside the tolerance. 0 mL (stopped before anything ran) is legitimate:
    there is then no average rate.
    """
    _require(by, "cohorts.change_infusion", "record infusions")
    ended_at = _moment(ended_at, field="ended_at", label="The end")
    reason = _text(reason, field="reason", label="Reason", max_length=2000, required=True, code="reason_required")
    cells = _cells(cells_administered, field="cells_administered", allow_zero=True)
    volume = _volume(volume_ml)
    vitals = _vitals(vitals_after, field="vitals_after")
    confirmed = _flag(confirm_implausible_rate, field="confirm_implausible_rate")
    with transaction.atomic():
        cohort, infusion = _lock_infusion(infusion)
        return _infusion_finish(cohort=cohort, infusion=infusion, status=Infusion.Status.STOPPED_EARLY,
                                ended_at=ended_at, cells=cells, volume=volume, vitals=vitals, reason=reason,
                                confirmed=confirmed, by=by)  # fmt: skip


def _minutes(duration: timedelta) -> str:
    """A running time as a nurse reads it: "80 min", "79.5 min"."""
    minutes = Decimal(duration // timedelta(microseconds=1)) / 60_000_000
    return f"{_plain(minutes.quantize(Decimal('0.1'), ROUND_HALF_UP))} min"


def _average_rate_check(*, infusion: Infusion, ended_at: datetime, volume: Decimal, confirmed: bool) -> str:
    """The drip rate the infusion averaged, set on ``infusion`` (not saved), with the protocol's range and flag.

    average drops/min = volume given × drop factor ÷ running minutes (end − start − interruptions).
    - Nothing given (0 mL, only possible when stopped early): no average, no flag.
    - Volume given with no running time: refused (``no_running_time``); it cannot be confirmed.
    - Above ``IMPLAUSIBLE_RATE_FACTOR`` × the maximum: refused (``implausible_average_rate``) unless the
      nurse confirms it; confirmed, it is saved, flagged and recorded as confirmed.
    Returns the text for the audit reason ("" when in range or not computed).
    """
    if volume == 0:
        return ""
    low, high = infusion.trial.infusion_rate_min, infusion.trial.infusion_rate_max
    interrupted = infusion.interrupted_for(ended_at)
    running = ended_at - infusion.started_at - interrupted
    rate = average_drip_rate(volume_ml=volume, drop_factor=infusion.drop_factor, running=running)
    stored = Infusion._meta.get_field("average_drops_per_minute")
    if rate is None or rate >= Decimal(10) ** (stored.max_digits - stored.decimal_places):
        # No running time, or so little that the rate is beyond any infusion (and beyond the column).
        raise InvalidInput(
            "no_running_time", f"{_plain(volume)} mL cannot be given in no running time (end − start, less "
            f"{_minutes(interrupted)} interrupted). Check the end time and the interruptions, or record 0 mL if "
            "nothing was given.", {"ended_at": ["No running time."], "volume_ml": ["Given in no time."]},
        )  # fmt: skip
    how = (f"{_plain(volume)} mL × {infusion.drop_factor} drops/mL ÷ {_minutes(running)} of running time (end − "
           f"start, less {_minutes(interrupted)} interrupted)")  # fmt: skip
    limit = high * IMPLAUSIBLE_RATE_FACTOR
    implausible = rate > limit
    if implausible and not confirmed:
        raise InvalidInput(
            "implausible_average_rate", f"The average rate, {_plain(rate)} drops/min = {how}, is not plausible for a "
            f"drip: it is more than {IMPLAUSIBLE_RATE_FACTOR} × the protocol's maximum of {_plain(high)} drops/min "
            f"({_plain(limit)} drops/min). Check the end time, the interruptions, the volume and the giving set. If "
            "they are right, confirm the implausible rate (“Confirm an implausible average rate”; in the API "
            "confirm_implausible_rate): it is then saved, flagged, and a major deviation opens.",
            {"confirm_implausible_rate": ["Check the entry, or confirm it."]},
        )  # fmt: skip
    infusion.average_drops_per_minute = rate
    infusion.average_rate_min, infusion.average_rate_max = low, high
    infusion.average_rate_out_of_range = not (low <= rate <= high)
    infusion.implausible_rate_confirmed = implausible
    if implausible:
        return f"; average rate {_plain(rate)} drops/min = {how}, confirmed as entered although implausible"
    if infusion.average_rate_out_of_range:
        return f"; average rate {_plain(rate)} drops/min, outside the protocol"
    return ""


def _average_rate_deviation(*, infusion: Infusion, participant: Participant, by) -> None:
    """An average outside the range opens a deviation, as an out-of-range reading does (``drip_rate_record``):
    category infusion rate, major when faster, minor when slower, linked to the infusion (no reading)."""
    if not infusion.average_rate_out_of_range:
        return
    rate, low, high = infusion.average_drops_per_minute, infusion.average_rate_min, infusion.average_rate_max
    confirmed = (f" The nurse confirmed it as entered although it is more than {IMPLAUSIBLE_RATE_FACTOR} × the "
                 "maximum (implausible for a drip).") if infusion.implausible_rate_confirmed else ""  # fmt: skip
    _system_deviation(
        participant=participant, category=ProtocolDeviation.Category.INFUSION_RATE,
        severity=ProtocolDeviation.Severity.MAJOR if rate > high else ProtocolDeviation.Severity.MINOR,
        description=f"Average rate {_plain(rate)} drops/min ({_plain(infusion.volume_ml)} mL in "
        f"{_minutes(infusion.duration)} running time "
        f"with a {infusion.drop_factor} drops/mL set; {infusion.average_ml_per_hour or '—'} mL/h) is "
        f"{'faster than' if rate > high else 'slower than'} the protocol's {_plain(low)}–{_plain(high)} drops/min."
        + confirmed,
        occurred_on=timezone.localdate(infusion.ended_at, timezone=selectors.site_zone(participant)), by=by,
        infusion=infusion,
    )  # fmt: skip


def _infusion_finish(
    *, cohort: Cohort, infusion: Infusion, status: str, ended_at: datetime, cells: int, volume: Decimal,
    vitals: dict[str, Any], reason: str, confirmed: bool, by,
) -> Infusion:  # fmt: skip
    if infusion.status != Infusion.Status.IN_PROGRESS:
        raise RuleViolation("infusion_not_in_progress", f"The infusion is {infusion.get_status_display().lower()}.")
    zone = selectors.site_zone(infusion.participant)
    if ended_at < infusion.started_at:
        raise InvalidInput(
            "end_before_start", "The infusion cannot end before it started "
            f"({selectors.format_site_time(infusion.started_at, zone)}).", {"ended_at": ["Before the start."]},
        )  # fmt: skip
    last_seen = max(
        [*infusion.readings.values_list("observed_at", flat=True),
         *(i.restarted_at or i.stopped_at for i in infusion.interruptions.all())],
        default=None,
    )  # fmt: skip
    if last_seen is not None and ended_at < last_seen:
        raise InvalidInput("end_before_start", "The infusion cannot end before its last recorded rate or "
                           "interruption.", {"ended_at": ["Before the last record."]})  # fmt: skip
    rate_note = _average_rate_check(infusion=infusion, ended_at=ended_at, volume=volume, confirmed=confirmed)
    trial, dose = infusion.trial, infusion.dose_level
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site").get(pk=infusion.participant_id)
    )

    infusion.status = status
    infusion.ended_at = ended_at
    infusion.cells_administered = cells
    infusion.volume_ml = volume
    infusion.stop_reason = reason
    what = "completed" if status == Infusion.Status.COMPLETED else f"stopped early: {reason}"
    audit(infusion, by=by, reason=f"Infusion {what}{rate_note}").save()
    if vitals:
        _save_vitals(infusion=infusion, timepoint=VitalSigns.Timepoint.AFTER, values=vitals, at=ended_at, by=by)
    _average_rate_deviation(infusion=infusion, participant=participant, by=by)

    if not dose_within_tolerance(cells=cells, target=dose.cells, tolerance_pct=trial.dose_tolerance_pct):
        _system_deviation(
            participant=participant, category=ProtocolDeviation.Category.DOSE,
            severity=ProtocolDeviation.Severity.MAJOR,
            description=f"{format_cells(cells)} cells given ({cells:,}); the dose level {dose.label} is "
            f"{dose.cells_display} ({dose.cells:,}) ± {trial.dose_tolerance_pct}%."
            + (f" Infusion stopped early: {reason}" if reason else ""),
            occurred_on=timezone.localdate(ended_at, timezone=zone), by=by, infusion=infusion,
        )  # fmt: skip

    # DLT window: day 0 is the site's date the infusion started; the window covers days 0..N (inclusive),
    # so with N = 28 the day-28 visit is its last day. A later infusion (if the protocol allows one)
    # extends the window, never shortens it.
    day0 = selectors.infusion_day(infusion, zone)
    participant.dlt_window_start = participant.dlt_window_start or day0
    participant.dlt_window_end = max(participant.dlt_window_end or day0, day0 + timedelta(days=trial.dlt_window_days))
    if participant.status == Participant.Status.ENROLLED:
        participant.status = Participant.Status.INFUSED
    audit(participant, by=by, reason=f"Infused; DLT window {participant.dlt_window_start} to "
          f"{participant.dlt_window_end}").save()  # fmt: skip

    for definition in trial.visit_schedule.order_by("day_offset", "code"):
        target = day0 + timedelta(days=definition.day_offset)
        visit = FollowUpVisit(
            participant=participant, infusion=infusion, definition=definition, code=definition.code,
            name=definition.name, day_offset=definition.day_offset, target_date=target,
            window_start=target - timedelta(days=definition.window_before_days),
            window_end=target + timedelta(days=definition.window_after_days),
        )  # fmt: skip
        audit(visit, by=by, reason="Scheduled from the infusion day").save()

    _cohort_observe_if_all_infused(cohort=cohort, by=by)
    return infusion


def _cohort_observe_if_all_infused(*, cohort: Cohort, by) -> None:
    """The last infusion of a full cohort moves it to observing (a paused cohort resumes into observing)."""
    if not selectors.cohort_all_infused(cohort):
        return
    if cohort.state == Cohort.State.FULL:
        cohort.state = Cohort.State.OBSERVING
    elif cohort.state == Cohort.State.PAUSED and cohort.state_before_pause == Cohort.State.FULL:
        cohort.state_before_pause = Cohort.State.OBSERVING
    else:
        return
    audit(cohort, by=by, reason="Every participant infused: DLT windows running").save()


# --- follow-up visits ------------------------------------------------------------------------------


def _lock_visit(visit: FollowUpVisit) -> FollowUpVisit:
    visit = (
        FollowUpVisit.objects.select_for_update(of=("self",))
        .select_related("participant__site", "infusion")
        .get(pk=visit.pk)
    )
    if visit.status != FollowUpVisit.Status.SCHEDULED:
        raise RuleViolation("visit_already_recorded", f"{visit.name} is already {visit.get_status_display().lower()}.")
    return visit


def _participant_in_follow_up(participant: Participant, *, by, why: str) -> None:
    if participant.status == Participant.Status.INFUSED:
        participant.status = Participant.Status.IN_FOLLOW_UP
        audit(participant, by=by, reason=why).save()


def visit_complete(*, visit: FollowUpVisit, on: date, by) -> FollowUpVisit:
    """Record a visit as done on ``on`` (the site's date). Outside its window it is recorded, and a minor
    deviation (category visit window) opens."""
    _require(by, "cohorts.change_followupvisit", "record follow-up visits")
    if isinstance(on, datetime) or not isinstance(on, date):
        raise InvalidInput("invalid", "The visit date must be a date.", {"on": ["Invalid."]})
    with transaction.atomic():
        visit = _lock_visit(visit)
        participant = visit.participant
        if on > site_today(participant):
            raise InvalidInput("date_in_future", "The visit date cannot be in the future.", {"on": ["In the future."]})
        day0 = selectors.infusion_day(visit.infusion, selectors.site_zone(participant))
        if on < day0:
            raise InvalidInput("date_before_infusion", f"The visit cannot precede the infusion day ({day0}).",
                               {"on": ["Before the infusion."]})  # fmt: skip
        visit.status = FollowUpVisit.Status.COMPLETED
        visit.done_on = on
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(visit, by=by, reason=f"Visit done on {on}").save()
        if visit.out_of_window:
            _system_deviation(
                participant=participant, category=ProtocolDeviation.Category.VISIT_WINDOW,
                severity=ProtocolDeviation.Severity.MINOR,
                description=f"{visit.name} done on {on}, outside its window {visit.window_start} to "
                f"{visit.window_end} (target {visit.target_date}, day {visit.day_offset}).",
                occurred_on=on, by=by, visit=visit, infusion=visit.infusion,
            )  # fmt: skip
        _participant_in_follow_up(participant, by=by, why=f"Follow-up: {visit.name} done")
    return visit


def visit_miss(*, visit: FollowUpVisit, reason: str, by) -> FollowUpVisit:
    _require(by, "cohorts.change_followupvisit", "record follow-up visits")
    reason = _text(reason, field="reason", label="Reason", max_length=2000, required=True, code="reason_required")
    with transaction.atomic():
        visit = _lock_visit(visit)
        visit.status = FollowUpVisit.Status.MISSED
        visit.missed_reason = reason
        visit.recorded_by = by
        visit.recorded_at = timezone.now()
        audit(visit, by=by, reason=f"Visit missed: {reason}").save()
        _participant_in_follow_up(visit.participant, by=by, why=f"Follow-up: {visit.name} missed")
    return visit


# --- protocol deviations -----------------------------------------------------------------------------


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
    _require(by, "cohorts.add_protocoldeviation", "record protocol deviations")
    if category not in ProtocolDeviation.Category.values:
        raise InvalidInput("invalid", f"Unknown category {category!r}.", {"category": ["Invalid."]})
    if severity not in ProtocolDeviation.Severity.values:
        raise InvalidInput("invalid", f"Unknown severity {severity!r}.", {"severity": ["Invalid."]})
    description = _text(description, field="description", label="Description", max_length=5000, required=True)
    corrective_action = _text(corrective_action, field="corrective_action", label="Corrective action",
                              max_length=5000)  # fmt: skip
    if isinstance(occurred_on, datetime) or not isinstance(occurred_on, date):
        raise InvalidInput("invalid", "The date of the deviation must be a date.", {"occurred_on": ["Invalid."]})
    if occurred_on > site_today(participant):
        raise InvalidInput("date_in_future", "A deviation cannot happen in the future.", {"occurred_on": ["Future."]})
    if infusion is not None and infusion.participant_id != participant.pk:
        raise InvalidInput("invalid", "That infusion is another participant's.", {"infusion": ["Wrong participant."]})
    if visit is not None and visit.participant_id != participant.pk:
        raise InvalidInput("invalid", "That visit is another participant's.", {"visit": ["Wrong participant."]})
    deviation = ProtocolDeviation(
        trial_id=participant.trial_id, participant=participant, category=category, severity=severity,
        description=description, source=ProtocolDeviation.Source.STAFF, detected_by=by, occurred_on=occurred_on,
        detected_at=timezone.now(), corrective_action=corrective_action, infusion=infusion, visit=visit,
    )  # fmt: skip
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
    _require(by, "cohorts.change_protocoldeviation", "change protocol deviations")
    reason = _text(reason, field="reason", label="Reason", max_length=2000, required=True, code="reason_required")
    if severity is not None and severity not in ProtocolDeviation.Severity.values:
        raise InvalidInput("invalid", f"Unknown severity {severity!r}.", {"severity": ["Invalid."]})
    if description is not None:
        description = _text(description, field="description", label="Description", max_length=5000, required=True)
    if corrective_action is not None:
        corrective_action = _text(corrective_action, field="corrective_action", label="Corrective action",
                                  max_length=5000)  # fmt: skip
    with transaction.atomic():
        deviation = ProtocolDeviation.objects.select_for_update().get(pk=deviation.pk)
        if deviation.status == ProtocolDeviation.Status.CLOSED:
            raise RuleViolation("deviation_closed", "This deviation is closed; record a new one to add to it.")
        if severity is not None:
            deviation.severity = severity
        if description is not None:
            deviation.description = description
        if corrective_action is not None:
            deviation.corrective_action = corrective_action
        if close:
            if not deviation.corrective_action:
                raise InvalidInput("corrective_action_required", "Give the corrective action before closing.",
                                   {"corrective_action": ["Required to close."]})  # fmt: skip
            deviation.status = ProtocolDeviation.Status.CLOSED
            deviation.closed_at = timezone.now()
            deviation.closed_by = by
        audit(deviation, by=by, reason=reason).save()
    return deviation
