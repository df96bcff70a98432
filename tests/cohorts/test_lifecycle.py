"""The cohort lifecycle: which transition a cohort may take in which state, and that nothing else moves it."""

import pytest

from cohorts.models import Cohort
from cohorts.services import TRANSITIONS, Transition, cohort_transition, transition_allowed
from core.errors import RuleViolation
from trial.models import DoseLevel

S = Cohort.State
LOW = DoseLevel(level=1, label="Low", cells=60_000_000)

# The table of the lifecycle module, written out again: each transition and the states it starts from.
ALLOWED_FROM = {
    Transition.FILL: {S.OPEN},
    Transition.REPLACE: {S.OPEN, S.FULL, S.OBSERVING},
    Transition.ALL_INFUSED: {S.FULL},
    Transition.START_REVIEW: {S.OBSERVING},
    Transition.PAUSE: {S.OPEN, S.FULL, S.OBSERVING, S.IN_REVIEW},
    Transition.RESUME: {S.PAUSED},
    Transition.CLOSE: {S.OPEN, S.FULL, S.OBSERVING, S.IN_REVIEW, S.PAUSED},
}


def test_every_transition_is_in_the_table():
    assert set(TRANSITIONS) == set(Transition) == set(ALLOWED_FROM)


@pytest.mark.parametrize("transition", list(Transition))
@pytest.mark.parametrize("state", S.values)
def test_a_transition_is_allowed_only_from_its_states(transition, state):
    cohort = Cohort(state=state, state_before_pause="")
    assert transition_allowed(cohort, transition) is (state in ALLOWED_FROM[transition])


@pytest.mark.parametrize(("before_pause", "allowed"), [(S.FULL, True), (S.OPEN, False), (S.OBSERVING, False)])
def test_the_last_infusion_of_a_paused_cohort_moves_the_state_it_resumes_to(before_pause, allowed):
    assert (
        transition_allowed(Cohort(state=S.PAUSED, state_before_pause=before_pause), Transition.ALL_INFUSED) is allowed
    )


def test_a_transition_the_table_does_not_allow_is_refused_and_nothing_changes():
    cohort = Cohort(state=S.CLOSED, state_before_pause="", capacity=3, sequence=1, dose_level=LOW)
    with pytest.raises(RuleViolation) as refused:
        cohort_transition(cohort=cohort, transition=Transition.RESUME, by=None, reason="Not possible")
    assert refused.value.code == "cohort_transition_not_allowed"
    assert (cohort.state, cohort.capacity) == (S.CLOSED, 3)
