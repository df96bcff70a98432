"""Safety reviews: opened (scheduled, by a stopping rule, by the chair) and the decision proposed."""

from django.db import transaction
from django.utils import timezone

from cohorts.models import Cohort
from cohorts.selectors import dlt_windows_complete
from cohorts.services import Transition, cohort_transition
from core.errors import DomainError, ErrorCode, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import audit
from safety import rules
from safety.models import SafetyReview
from safety.selectors import (
    canonical_json,
    review_snapshot,
    sha256_hex,
)
from safety.services.gate import check_decision_possible, is_chair, overdue_visits
from safety.services.reminding import (
    review_closed_reminders_cancel,
    review_opened_reminder,
    review_signature_reminders,
)


def _new_review(*, cohort: Cohort, kind: str, reason: str, by) -> SafetyReview:
    snapshot = review_snapshot(cohort)
    review = SafetyReview(
        trial=cohort.trial,
        cohort=cohort,
        kind=kind,
        reason=reason,
        opened_at=timezone.now(),
        opened_by=by,
        snapshot=snapshot,
        snapshot_digest=sha256_hex(canonical_json(snapshot)),
    )
    audit(review, by=by, reason=f"Safety review opened: {reason}").save()
    review_opened_reminder(review=review, by=by)
    return review


def _withdraw_open_reviews(cohort: Cohort, *, by, reason: str) -> None:
    for stale in SafetyReview.objects.select_for_update().filter(cohort=cohort, state=SafetyReview.State.OPEN):
        stale.state = SafetyReview.State.WITHDRAWN
        audit(stale, by=by, reason=reason).save()
        review_closed_reminders_cancel(review=stale, by=by)


def review_open_scheduled(*, cohort: Cohort, by=None) -> SafetyReview:
    """Open the review of a cohort whose participants all completed the DLT window (cohort → in review)."""

    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state != Cohort.State.OBSERVING:
            raise RuleViolation(ErrorCode.COHORT_NOT_OBSERVING, f"{cohort} is {cohort.get_state_display().lower()}.")
        if not dlt_windows_complete(cohort):
            raise RuleViolation(ErrorCode.DLT_WINDOWS_RUNNING, f"DLT windows of {cohort} are still running.")
        if SafetyReview.objects.filter(cohort=cohort, state=SafetyReview.State.OPEN).exists():
            raise RuleViolation(
                ErrorCode.REVIEW_ALREADY_OPEN, f"{cohort} already has an open review (called by the chair)."
            )
        cohort_transition(
            cohort=cohort,
            transition=Transition.START_REVIEW,
            by=by,
            reason="Every participant completed the DLT window: safety review opened",
        )
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.SCHEDULED, reason="DLT windows complete", by=by)


def reviews_open_due(*, by=None) -> list[SafetyReview]:
    """Open the scheduled review of every observing cohort whose DLT windows are complete (beat task)."""

    opened = []
    for cohort in Cohort.objects.filter(state=Cohort.State.OBSERVING).select_related("trial", "dose_level"):
        if dlt_windows_complete(cohort):
            try:
                opened.append(review_open_scheduled(cohort=cohort, by=by))
            except DomainError:
                continue  # another worker opened it first, or the chair's review is open: next cohort
    return opened


def review_open_unscheduled(*, cohort: Cohort, reason: str, by) -> SafetyReview:
    """A stopping rule opens a fresh review; any open review's snapshot is stale and is withdrawn."""
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        _withdraw_open_reviews(cohort, by=by, reason="Superseded: a stopping rule opened an unscheduled review")
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.UNSCHEDULED, reason=reason, by=by)


def review_open_by_chair(*, cohort: Cohort, reason: str, by) -> SafetyReview:
    if not is_chair(by):
        raise PermissionDenied(ErrorCode.PERMISSION_DENIED, "Only the committee chair can call a safety review.")
    if not reason.strip():
        raise InvalidInput(ErrorCode.REASON_REQUIRED, "Say why the review is called.", {"reason": ["Required."]})
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state in (Cohort.State.PLANNED, Cohort.State.CLOSED):
            raise RuleViolation(ErrorCode.COHORT_NOT_ACTIVE, f"{cohort} is {cohort.get_state_display().lower()}.")
        _withdraw_open_reviews(cohort, by=by, reason="Superseded by a review the chair called")
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.CHAIR, reason=reason, by=by)


def protocol_recommendation(review: SafetyReview) -> str:
    """The decision the protocol's design recommends, read from the snapshot (3+3 for NCT06949137)."""
    design = review.snapshot["design"]
    rec = review.snapshot["recommendations"].get(design) or {}
    current = review.snapshot["cohort"]["dose_level"]
    dose, goes_on = rec.get("recommended_dose"), rec.get("continue")
    if dose is None:
        return SafetyReview.Decision.STOP
    if not goes_on:
        return SafetyReview.Decision.MTD
    if dose > current:
        return SafetyReview.Decision.ESCALATE
    if dose < current:
        return SafetyReview.Decision.DEESCALATE
    return SafetyReview.Decision.EXPAND


def review_mtd_selection(review: SafetyReview) -> dict:
    """The protocol design's MTD selection over the review's frozen data (a dict of
    ``rules.MtdSelection.to_dict()`` plus its ``statement``)."""
    design = review.snapshot["design"]
    frozen = review.snapshot.get("mtd_selection", {}).get(design)
    if frozen is not None:
        return frozen
    # A snapshot frozen before MTD selections were recorded: the same pure rule over its outcome string.
    selection = rules.select_mtd(
        design,
        review.snapshot["outcomes"],
        num_doses=len(review.snapshot["dose_levels"]),
        target=float(review.trial.boin_target_rate),
    )
    return selection.to_dict() | {"statement": selection.statement}


def review_propose(
    *,
    review: SafetyReview,
    decision: str,
    rationale: str = "",
    mtd_level: int | None = None,
    acknowledge_visits: bool = False,
    by,
) -> SafetyReview:
    """Set the decision to be signed. Only before the first signature.

    A decision that differs from the protocol's recommendation needs a rationale. With ``mtd``, the
    review records the design's MTD selection over the frozen data; ``mtd_level`` declares another
    dose instead: only a treated one, only with a rationale, and the review shows the departure.
    ``acknowledge_visits`` says that the rationale addresses the overdue DLT-window visits listed on
    the review; without it, a decision other than stop waits until they are recorded.
    """
    require_permission(by, "safety.sign_review", "propose review decisions (committee members only)")
    if decision not in SafetyReview.Decision.values:
        raise InvalidInput(
            ErrorCode.INVALID_DECISION,
            f"Decision must be one of {', '.join(SafetyReview.Decision.values)}.",
            {"decision": ["Unknown decision."]},
        )
    if mtd_level is not None and (isinstance(mtd_level, bool) or not isinstance(mtd_level, int)):
        raise InvalidInput(ErrorCode.INVALID, "The MTD is a dose level number.", {"mtd_level": ["Not a dose level."]})
    if mtd_level is not None and decision != SafetyReview.Decision.MTD:
        raise InvalidInput(
            ErrorCode.MTD_LEVEL_WITHOUT_MTD,
            "A dose level for the MTD goes only with the decision 'mtd'.",
            {"mtd_level": ["Only with decision mtd."]},
        )
    with transaction.atomic():
        review = (
            SafetyReview.objects.select_for_update(of=("self",))
            .select_related("cohort__dose_level", "trial")
            .get(pk=review.pk)
        )
        if review.state != SafetyReview.State.OPEN:
            raise RuleViolation(
                ErrorCode.REVIEW_CLOSED,
                f"This review is {review.get_state_display().lower()}: a correction is a new review.",
            )
        if review.signatures.exists():
            raise RuleViolation(ErrorCode.REVIEW_SIGNED, "The review is already signed: its decision cannot change.")
        acknowledged = [v.pk for v in overdue_visits(review)] if acknowledge_visits else []
        if acknowledged and not rationale.strip():
            raise InvalidInput(
                ErrorCode.RATIONALE_REQUIRED,
                "Say in the rationale how the committee weighed the overdue safety visits.",
                {"rationale": ["Required when overdue visits are acknowledged."]},
            )
        check_decision_possible(review, decision, acknowledged=acknowledged)
        recommended = protocol_recommendation(review)
        if decision != recommended and not rationale.strip():
            raise InvalidInput(
                ErrorCode.RATIONALE_REQUIRED,
                f"The protocol's design recommends '{recommended}': explain why the committee decides '{decision}'.",
                {"rationale": ["Required when the decision differs from the recommendation."]},
            )
        if mtd_level is not None:
            _check_declared_mtd(review, mtd_level, rationale)
        review.decision, review.rationale = decision, rationale
        review.declared_mtd_level = mtd_level
        review.acknowledged_visits = acknowledged
        review.proposed_by, review.proposed_at = by, timezone.now()
        what = f"{decision} (MTD declared: dose {mtd_level})" if mtd_level is not None else decision
        audit(review, by=by, reason=f"Decision proposed: {what}").save()
        review_signature_reminders(review=review, by=by)
    return review


def _check_declared_mtd(review: SafetyReview, level: int, rationale: str) -> None:
    treated = {d["dose_level"]: d["treated"] for d in review.snapshot["dose_levels"]}
    if level not in treated:
        raise InvalidInput(
            ErrorCode.INVALID,
            f"Dose level {level} is not a dose level of this trial.",
            {"mtd_level": ["Unknown dose level."]},
        )
    if not treated[level]:
        raise RuleViolation(
            ErrorCode.MTD_NOT_TREATED,
            f"Nobody was treated at dose level {level}: the MTD must be a dose that was given.",
            {"mtd_level": ["Not treated."]},
        )
    selection = review_mtd_selection(review)
    if level != selection["dose"] and not rationale.strip():
        raise InvalidInput(
            ErrorCode.RATIONALE_REQUIRED,
            f"The design's MTD selection is: {selection['statement']}. Explain why the committee declares dose "
            f"{level}.",
            {"rationale": ["Required when the MTD departs from the design's selection."]},
        )
