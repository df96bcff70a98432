"""Opening cohorts: the first at the lowest dose; a later one only under an effective committee decision."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts.models import Cohort
from core.errors import RuleViolation, require_permission
from core.history import audit
from trial.models import DoseLevel, Trial


def cohort_open(*, trial: Trial, dose_level: DoseLevel, by, reason: str) -> Cohort:
    """Create and open the next cohort. Callers have checked the gate; the database holds one-active."""
    sequence = (trial.cohorts.order_by("-sequence").values_list("sequence", flat=True).first() or 0) + 1
    cohort = Cohort(
        trial=trial,
        dose_level=dose_level,
        sequence=sequence,
        capacity=trial.cohort_size,
        state=Cohort.State.OPEN,
        opened_at=timezone.now(),
        opened_by=by,
    )
    try:
        with transaction.atomic():
            audit(cohort, by=by, reason=reason).save()
    except IntegrityError:
        raise RuleViolation("cohort_already_active", "Another cohort of this trial is still active.") from None
    return cohort


def cohort_open_first(*, trial: Trial, by) -> Cohort:
    """Open the trial's first cohort at its lowest dose level (an explicit, permissioned action)."""
    require_permission(by, "cohorts.open_first_cohort", "open the first cohort")
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
        return cohort_open(trial=trial, dose_level=lowest, by=by, reason="First cohort opened at the lowest dose")


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
