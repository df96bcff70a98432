"""Enrolling an eligible, consented participant into the open cohort (DESIGN rules 2 and 3)."""

from django.db import transaction
from django.utils import timezone

from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from cohorts.selectors import current_consent, eligibility_summary
from cohorts.services.lifecycle import Activity, Transition, cohort_refusal, cohort_transition
from cohorts.services.participant_lifecycle import ParticipantTransition, participant_transition
from core.errors import ErrorCode, RuleViolation, require_permission
from core.history import audit
from trial.access import require_participant_access


def enroll_participant(*, participant: Participant, cohort: Cohort, by) -> Enrollment:
    """Enroll an eligible, consented participant into the open cohort; race-free.

    Locks the participant row (so her screening, judgments and consent hold still), evaluates her
    eligibility, and only then locks the cohort row, for as short a time as possible: check, take the
    next slot, insert. Participant first, cohort second: the lock order of every service.
    Refusals come in this order: cohort paused / trial stopped, cohort full, cohort not open, another
    trial, already enrolled, not eligible, judgment pending, no consent. Assigns the study ID and slot;
    the first enrollee is the cohort's sentinel; at capacity the cohort becomes full.
    """
    require_permission(by, "cohorts.add_enrollment", "enroll participants")
    require_participant_access(by, participant)
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("site", "trial").get(pk=participant.pk)
        )
        summary = eligibility_summary(participant)
        consent_ok = not summary.consent_missing and current_consent(participant) is not None
        already_enrolled = Enrollment.objects.filter(participant=participant).exists()

        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        enrolled = cohort.enrollments.count()
        refusal = cohort_refusal(cohort, Activity.ENROLLMENT, enrolled=enrolled)
        if refusal is not None:
            raise refusal
        if participant.trial_id != cohort.trial_id:
            raise RuleViolation(ErrorCode.WRONG_TRIAL, f"{participant} is screened for another trial.")
        if already_enrolled:
            raise RuleViolation(ErrorCode.ALREADY_ENROLLED, f"{participant} is already enrolled.")
        if summary.unmet or summary.missing:
            failing = list(summary.unmet + summary.missing)
            raise RuleViolation(
                ErrorCode.NOT_ELIGIBLE,
                f"Screening {participant.screening_number} is not eligible ({', '.join(failing)}).",
                {"criteria": failing},
            )
        if summary.pending_judgment:
            raise RuleViolation(
                ErrorCode.JUDGMENT_PENDING,
                "An investigator must still confirm: " + ", ".join(summary.pending_judgment) + ".",
                {"criteria": list(summary.pending_judgment)},
            )
        if not consent_ok:
            raise RuleViolation(
                ErrorCode.NO_CONSENT,
                f"Screening {participant.screening_number} has no signed consent of the version in force.",
            )
        if participant.status != Participant.Status.ELIGIBLE:
            raise RuleViolation(ErrorCode.NOT_ELIGIBLE, f"{participant} is {participant.get_status_display().lower()}.")
        trial = cohort.trial
        # One active cohort per trial, so the cohort lock also serialises the trial's study ID numbers.
        number = Enrollment.objects.filter(trial=trial).count() + 1
        slot = enrolled + 1
        enrollment = Enrollment(
            trial=trial,
            participant=participant,
            cohort=cohort,
            slot=slot,
            cohort_capacity=cohort.capacity,
            is_sentinel=(slot == 1 and not cohort.enrollments.filter(is_sentinel=True).exists()),
            enrolled_at=timezone.now(),
            enrolled_by=by,
        )
        audit(enrollment, by=by, reason=f"Enrolled into cohort {cohort.sequence}").save()
        participant.study_id = f"{trial.registry_id[-4:]}-{number:03d}"
        participant_transition(
            participant=participant, transition=ParticipantTransition.ENROLL, by=by, reason="", save=False
        )
        audit(participant, by=by, reason=f"Enrolled into cohort {cohort.sequence} as {participant.study_id}").save()
        if slot >= cohort.capacity:
            cohort_transition(cohort=cohort, transition=Transition.FILL, by=by, reason="Cohort full")
    return enrollment
