"""A decision takes effect: in one transaction the reviewed cohort closes (or resumes), the next cohort opens
under the decision (the database gate checks it), the trial stops or the MTD is recorded."""

from django.utils import timezone

from cohorts.models import Cohort
from cohorts.services import Transition, cohort_open, cohort_transition
from core.history import audit
from safety.models import SafetyReview
from safety.services.gate import check_decision_possible
from safety.services.reminding import decision_effective_reminder, review_closed_reminders_cancel
from safety.services.reviews import review_mtd_selection
from trial.models import Trial


def review_make_effective(review: SafetyReview, *, trial: Trial, cohort: Cohort, by) -> None:
    """The gate: in one transaction the cohort closes with its decision and the next one opens.

    Called by ``review_sign`` for the signature that reaches quorum, on the rows it locked (the trial,
    the cohort, the review) and after it checked the live safety data against the snapshot: neither is
    done twice. The rules a decision must meet are checked again here (overdue visits, dose levels, the
    maximum per dose, DLT windows), since time has passed since the proposal.
    """
    check_decision_possible(review, review.decision, live_data_checked=True)
    now = timezone.now()
    Decision = SafetyReview.Decision
    if review.decision == Decision.RESUME:
        cohort_transition(
            cohort=cohort, transition=Transition.RESUME, by=by, reason=f"Resumed by safety review {review.pk}"
        )
    else:
        cohort_transition(
            cohort=cohort,
            transition=Transition.CLOSE,
            by=by,
            reason=f"Closed by safety review {review.pk}: {review.get_decision_display()}",
            decision=review.decision,
            at=now,
        )
    level = cohort.dose_level.level
    target = {Decision.ESCALATE: level + 1, Decision.EXPAND: level, Decision.DEESCALATE: level - 1}.get(review.decision)
    if target is not None:
        dose = trial.dose_levels.get(level=target)
        review.resulting_cohort = cohort_open(
            trial=trial,
            dose_level=dose,
            by=by,
            reason=f"Opened by the effective decision of safety review {review.pk} ({review.decision})",
        )
    if review.decision == Decision.STOP:
        trial.status = Trial.Status.STOPPED
        audit(trial, by=by, reason=f"Stopped by safety review {review.pk}").save()
    if review.decision == Decision.MTD:
        _record_mtd(review, trial)
        trial.status = Trial.Status.COMPLETED
        audit(trial, by=by, reason=f"Escalation ended by safety review {review.pk}: {review.mtd_statement}").save()
    review.state, review.decided_at = SafetyReview.State.EFFECTIVE, now
    audit(review, by=by, reason="Quorum reached with the chair and no rejection: decision effective").save()
    review_closed_reminders_cancel(review=review, by=by)
    decision_effective_reminder(review=review, by=by)


def _record_mtd(review: SafetyReview, trial: Trial) -> None:
    """The MTD a review records: the design's selection over the frozen data, or the treated dose the
    committee declared with its rationale (shown as a departure). Never the recommended next dose."""
    selection = review_mtd_selection(review)
    design = "3+3" if review.snapshot["design"] == "3+3" else "BOIN"
    level = review.declared_mtd_level if review.declared_mtd_level is not None else selection["dose"]
    review.mtd_departs_from_rule = level != selection["dose"]
    if level is None:
        review.mtd_dose_level = None
        statement = selection["statement"]
        if selection.get("highest_cleared"):
            cleared = trial.dose_levels.get(level=selection["highest_cleared"])
            statement += f" ({cleared.label}, {cleared.cells_display} cells)"
        review.mtd_statement = statement
        return
    dose = trial.dose_levels.get(level=level)
    review.mtd_dose_level = dose
    review.mtd_statement = f"MTD: dose {level} ({dose.label}, {dose.cells_display} cells)"
    if review.mtd_departs_from_rule:
        review.mtd_statement += (
            f"; declared by the committee, departing from the {design} selection ({selection['statement']})"
        )
