"""The cohort lifecycle: the only code that assigns ``Cohort.state``.

A cohort is created open: the trial's first at its lowest dose (``cohort_open_first``), a later one
only under an effective decision of the safety review committee (``safety.services.decisions`` calls
``cohort_open``; the database's gate trigger refuses the insert otherwise). From then on its state
moves only by a transition of ``TRANSITIONS``, applied by ``cohort_transition`` with its audit row,
in the caller's transaction and under the caller's lock of the cohort row:

=============  ========================================  ====================  ==================================
transition     from                                      to                    also
=============  ========================================  ====================  ==================================
fill           open                                      full                  (the last slot was taken)
replace        open, full, observing                     open                  capacity + 1 (a replacement slot)
all_infused    full (also under a pause)                 observing             paused: the state it resumes to
start_review   observing                                 in_review
pause          open, full, observing, in_review          paused                remembers the state to resume to
resume         paused                                    the state it paused   (open if none was remembered)
close          open, full, observing, in_review, paused  closed                closed_at, the decision
=============  ========================================  ====================  ==================================

``cohort_refusal`` is the one guard that says whether a cohort accepts enrollment or infusion now.
"""

import enum
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from cohorts.models import ACTIVE_COHORT_STATES, Cohort
from core.errors import ErrorCode, RuleViolation, require_permission
from core.history import audit
from trial.access import require_trial_access
from trial.models import DoseLevel, Trial

State = Cohort.State


class Transition(enum.StrEnum):
    FILL = "fill"
    REPLACE = "replace"
    ALL_INFUSED = "all_infused"
    START_REVIEW = "start_review"
    PAUSE = "pause"
    RESUME = "resume"
    CLOSE = "close"


# The target of ``resume``: the state the cohort was in when it paused.
STATE_BEFORE_PAUSE = "state_before_pause"

# transition -> (the states it starts from, the state it ends in)
TRANSITIONS: dict[Transition, tuple[frozenset[str], str]] = {
    Transition.FILL:         (frozenset({State.OPEN}), State.FULL),
    Transition.REPLACE:      (frozenset({State.OPEN, State.FULL, State.OBSERVING}), State.OPEN),
    Transition.ALL_INFUSED:  (frozenset({State.FULL}), State.OBSERVING),
    Transition.START_REVIEW: (frozenset({State.OBSERVING}), State.IN_REVIEW),
    Transition.PAUSE:        (frozenset({State.OPEN, State.FULL, State.OBSERVING, State.IN_REVIEW}), State.PAUSED),
    Transition.RESUME:       (frozenset({State.PAUSED}), STATE_BEFORE_PAUSE),
    Transition.CLOSE:        (frozenset(ACTIVE_COHORT_STATES), State.CLOSED),
}  # fmt: skip

# Transitions a paused cohort goes through in the state it will resume to (its infusions in progress
# when the pause came may still finish).
THROUGH_A_PAUSE = frozenset({Transition.ALL_INFUSED})


def _current(cohort: Cohort, transition: Transition) -> str:
    """The state ``transition`` starts from: a paused cohort's remembered state for the ones that go through a pause."""
    if cohort.state == State.PAUSED and transition in THROUGH_A_PAUSE:
        return cohort.state_before_pause
    return cohort.state


def transition_allowed(cohort: Cohort, transition: Transition) -> bool:
    """Whether ``transition`` may be applied to ``cohort`` in its state now."""
    sources, _ = TRANSITIONS[transition]
    return _current(cohort, transition) in sources


def cohort_transition(
    *,
    cohort: Cohort,
    transition: Transition,
    by,
    reason: str,
    decision: str = "",
    at: datetime | None = None,
) -> Cohort:
    """Apply ``transition`` to the locked ``cohort`` and save it with its audit row (``reason``).

    ``close`` records ``decision`` and ``at`` (default now) as the cohort's decision and closing time.
    Callers check first and refuse in their own words; a transition the table does not allow is refused
    here too (``cohort_transition_not_allowed``), so no path can move a cohort another way.
    """
    if not transition_allowed(cohort, transition):
        raise RuleViolation(
            ErrorCode.COHORT_TRANSITION_NOT_ALLOWED,
            f"{cohort} is {cohort.get_state_display().lower()}: it cannot {transition.replace('_', ' ')}.",
        )
    _, target = TRANSITIONS[transition]
    if cohort.state == State.PAUSED and transition in THROUGH_A_PAUSE:
        cohort.state_before_pause = target
    elif transition == Transition.PAUSE:
        cohort.state_before_pause, cohort.state = cohort.state, target
    elif transition == Transition.RESUME:
        cohort.state, cohort.state_before_pause = cohort.state_before_pause or State.OPEN, ""
    elif transition == Transition.CLOSE:
        cohort.state, cohort.closed_at, cohort.decision = target, at or timezone.now(), decision
        cohort.state_before_pause = ""  # a paused cohort closed by stop / de-escalate is no longer paused
    else:
        cohort.state = target
    if transition == Transition.REPLACE:
        cohort.capacity += 1
    audit(cohort, by=by, reason=reason).save()
    return cohort


# --- whether a cohort accepts enrollment or infusion now ----------------------------------------------------------


class Activity(enum.StrEnum):
    ENROLLMENT = "enrollment"
    INFUSION = "infusion"


# The states in which a cohort accepts each activity.
ACCEPTING = {Activity.ENROLLMENT: frozenset({State.OPEN}), Activity.INFUSION: frozenset({State.OPEN, State.FULL})}


def cohort_refusal(cohort: Cohort, activity: Activity, *, enrolled: int | None = None) -> RuleViolation | None:
    """Why ``cohort`` (its trial joined) refuses ``activity`` now, or None. In this order: the cohort is
    paused, the trial is stopped, (enrollment) the cohort is full — ``enrolled`` of its capacity — and the
    cohort is not in a state that accepts it."""
    trial = cohort.trial
    if activity == Activity.ENROLLMENT:
        if cohort.state == State.PAUSED:
            return RuleViolation(
                ErrorCode.COHORT_PAUSED, f"{cohort} is paused: no enrollment until the committee resumes it."
            )
        if trial.status == Trial.Status.STOPPED:
            return RuleViolation(ErrorCode.TRIAL_STOPPED, f"{trial.registry_id} is stopped: no enrollment.")
        if cohort.state == State.FULL or (cohort.state == State.OPEN and (enrolled or 0) >= cohort.capacity):
            return RuleViolation(ErrorCode.COHORT_FULL, f"{cohort} is full ({cohort.capacity} of {cohort.capacity}).")
        if cohort.state not in ACCEPTING[activity]:
            return RuleViolation(
                ErrorCode.COHORT_NOT_OPEN, f"{cohort} is {cohort.get_state_display().lower()}, not open."
            )
        return None
    if cohort.state == State.PAUSED:
        return RuleViolation(
            ErrorCode.COHORT_PAUSED,
            f"{cohort} is paused by a stopping rule: no infusion until the safety review committee resumes it.",
        )
    if trial.status == Trial.Status.STOPPED:
        return RuleViolation(ErrorCode.TRIAL_STOPPED, f"{trial.registry_id} is stopped: no infusion.")
    if cohort.state not in ACCEPTING[activity]:
        return RuleViolation(
            ErrorCode.COHORT_NOT_OPEN, f"{cohort} is {cohort.get_state_display().lower()}: no infusion."
        )
    return None


# --- opening a cohort ---------------------------------------------------------------------------------------------


def cohort_open(*, trial: Trial, dose_level: DoseLevel, by, reason: str) -> Cohort:
    """Create the trial's next cohort, open, at ``dose_level``.

    Two callers: ``cohort_open_first`` (the lowest dose, once) and the safety review's effective decision
    (``safety.services.decisions``). The database decides the rest: its gate trigger refuses a later cohort
    unless an open review of the trial holds a quorum decision for exactly this dose level, and
    ``cohort_one_active_per_trial`` refuses a second active cohort (``cohort_already_active``).
    """
    sequence = (trial.cohorts.order_by("-sequence").values_list("sequence", flat=True).first() or 0) + 1
    cohort = Cohort(
        trial=trial,
        dose_level=dose_level,
        sequence=sequence,
        capacity=trial.cohort_size,
        state=State.OPEN,
        opened_at=timezone.now(),
        opened_by=by,
    )
    try:
        with transaction.atomic():
            audit(cohort, by=by, reason=reason).save()
    except IntegrityError:
        raise RuleViolation(ErrorCode.COHORT_ALREADY_ACTIVE, "Another cohort of this trial is still active.") from None
    return cohort


def cohort_open_first(*, trial: Trial, by) -> Cohort:
    """Open the trial's first cohort at its lowest dose level (an explicit, permissioned action)."""
    require_permission(by, "cohorts.open_first_cohort", "open the first cohort")
    require_trial_access(by, trial_id=trial.pk)
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=trial.pk)
        if trial.status == Trial.Status.STOPPED:
            raise RuleViolation(ErrorCode.TRIAL_STOPPED, f"{trial.registry_id} is stopped: no cohort can open.")
        if trial.cohorts.exists():
            raise RuleViolation(
                ErrorCode.ESCALATION_DECISION_REQUIRED,
                "The first cohort is already open or done. Later cohorts open only through an effective "
                "escalation decision of the safety review committee.",
            )
        lowest = trial.dose_levels.order_by("level").first()
        if lowest is None:
            raise RuleViolation(ErrorCode.NO_DOSE_LEVELS, f"{trial.registry_id} has no dose levels.")
        return cohort_open(trial=trial, dose_level=lowest, by=by, reason="First cohort opened at the lowest dose")


def cohort_open_next(*, trial: Trial, dose_level: DoseLevel, by) -> Cohort:
    """Opening any later cohort needs an effective escalation decision; none can exist without one.

    Safety rule 1: the only path to a later cohort is the safety review gate (``safety.services.decisions``),
    which calls ``cohort_open`` inside the transaction that makes the decision effective. This entry point
    exists so that the admin, the API and scripts get a clear refusal rather than a way around.
    """
    raise RuleViolation(
        ErrorCode.ESCALATION_DECISION_REQUIRED,
        f"Dose level {dose_level.level} can open only through an effective escalation decision signed by the "
        "safety review committee.",
    )
