"""The escalation gate's checks: who chairs, and whether a review's decision may be signed or take effect.

Run at the proposal and again at the signature that reaches quorum (``safety.services.decisions``).
"""

from cohorts.models import Cohort, Enrollment
from cohorts.selectors import dlt_windows_complete
from core.errors import ErrorCode, RuleViolation
from safety.models import AdverseEvent, SafetyReview
from safety.selectors import (
    review_snapshot,
    unrecorded_dlt_window_visits,
)

# Decisions that keep the trial going (or end escalation with an MTD): they wait for every overdue
# DLT-window visit to be recorded or addressed by the rationale. Stopping the trial never waits.
DECISIONS_NEEDING_VISITS = ("escalate", "expand", "deescalate", "resume", "mtd")


def overdue_visits(review: SafetyReview) -> list:
    """Still scheduled after the window, or missed by the follow-up sweep and not yet confirmed by staff: no
    person has recorded what happened at either."""
    return [
        v
        for v in unrecorded_dlt_window_visits(review.trial)
        if v.status == v.Status.SCHEDULED or v.missed_automatically
    ]


def _visit_label(visit) -> str:
    return f"{visit.participant.study_id or visit.participant} {visit.code} (window closed {visit.window_end})"


def _check_visits_recorded(review: SafetyReview, decision: str, acknowledged: list[int]) -> None:
    if decision not in DECISIONS_NEEDING_VISITS:
        return
    missing = [v for v in overdue_visits(review) if v.pk not in acknowledged]
    if missing:
        raise RuleViolation(
            ErrorCode.VISITS_UNRECORDED,
            f"{len(missing)} safety visit(s) in a DLT window are overdue and unrecorded: "
            f"{', '.join(_visit_label(v) for v in missing)}. Record each (done, or missed with the reason), or "
            "let the rationale address them (acknowledge_visits), before this decision can take effect.",
            {"acknowledge_visits": [_visit_label(v) for v in missing]},
        )


def check_review_data_current(review: SafetyReview) -> None:
    """The committee signs what it saw; if the safety data changed since (a new DLT candidate, a DLT
    confirmed or rejected), the snapshot is stale and no decision on it may be signed or take effect."""
    live_candidates = AdverseEvent.objects.filter(
        participant__trial=review.trial, dlt_status=AdverseEvent.DltStatus.CANDIDATE
    ).exists()
    if live_candidates:
        raise RuleViolation(
            ErrorCode.DLT_PENDING,
            "A DLT candidate awaits an investigator's decision: no decision can be "
            "signed until it is decided and a new review shows it.",
        )
    current = review_snapshot(review.cohort)
    seen = {d["dose_level"]: d["dlts"] for d in review.snapshot["dose_levels"]}
    now = {d["dose_level"]: d["dlts"] for d in current["dose_levels"]}
    if seen != now:
        raise RuleViolation(
            ErrorCode.SNAPSHOT_STALE,
            "DLTs changed since this review opened: the committee must review the current data in a new review.",
        )


def check_decision_possible(
    review: SafetyReview, decision: str, *, acknowledged: list[int] | None = None, live_data_checked: bool = False
) -> None:
    """Refuse a decision that may not be signed or take effect now, with the first rule it breaks.

    ``live_data_checked``: the caller has just compared the live safety data with the snapshot
    (``check_review_data_current``) in this transaction, as ``review_sign`` does before it inserts the
    signature that reaches quorum; it is not done twice.
    """
    cohort = review.cohort
    _check_visits_recorded(review, decision, review.acknowledged_visits if acknowledged is None else acknowledged)
    levels = set(review.trial.dose_levels.values_list("level", flat=True))
    level = cohort.dose_level.level
    if review.snapshot["adverse_events"]["pending_dlt_candidates"]:
        raise RuleViolation(
            ErrorCode.DLT_PENDING,
            "Investigators must first confirm or reject every DLT candidate; "
            "then open a new review with the decided data.",
        )
    if not live_data_checked:
        check_review_data_current(review)
    if decision == SafetyReview.Decision.ESCALATE and level + 1 not in levels:
        raise RuleViolation(ErrorCode.NO_HIGHER_DOSE, f"Dose level {level} is the highest: no escalation.")
    target = {
        SafetyReview.Decision.ESCALATE: level + 1,
        SafetyReview.Decision.EXPAND: level,
        SafetyReview.Decision.DEESCALATE: level - 1,
    }.get(decision)
    if target in levels:
        # Places already given to the dose: every cohort's capacity there, replaced participants aside.
        capacity = sum(review.trial.cohorts.filter(dose_level__level=target).values_list("capacity", flat=True))
        replaced = Enrollment.objects.filter(
            trial=review.trial, cohort__dose_level__level=target, participant__replaced=True
        ).count()
        allocated = capacity - replaced
        if allocated + review.trial.cohort_size > review.trial.max_per_dose_level:
            raise RuleViolation(
                ErrorCode.DOSE_LEVEL_FULL,
                f"Dose level {target} already has {allocated} places; another cohort of "
                f"{review.trial.cohort_size} would exceed the protocol's {review.trial.max_per_dose_level}.",
            )
    if target is not None and not dlt_windows_complete(cohort):
        # Safety rule 1: no cohort opens while any participant of the reviewed one is inside the DLT window.
        raise RuleViolation(ErrorCode.DLT_WINDOWS_RUNNING, f"Every DLT window of {cohort} must be complete first.")
    if decision == SafetyReview.Decision.DEESCALATE and level - 1 not in levels:
        raise RuleViolation(ErrorCode.NO_LOWER_DOSE, f"Dose level {level} is the lowest: no de-escalation.")
    if decision == SafetyReview.Decision.RESUME and cohort.state != Cohort.State.PAUSED:
        raise RuleViolation(ErrorCode.NOT_PAUSED, f"{cohort} is not paused.")


def is_chair(user) -> bool:
    """The chair holds safety.chair_review as a permission of their own (not through a group, nor as a
    superuser): the database's gate trigger checks exactly this."""
    return user.user_permissions.filter(content_type__app_label="safety", codename="chair_review").exists()
