"""The participant lifecycle: the only code that assigns ``Participant.status``.

Every status change is a transition of ``TRANSITIONS``, applied by ``participant_transition`` (one
participant, saved with its audit row unless the caller saves it with other fields in the same row) or
``participants_transition`` (many, one UPDATE and one history row each: the follow-up sweep):

=================  ===============================================  ===================  =========================
transition         from                                             to                   applied by
=================  ===============================================  ===================  =========================
screen_eligible    screening, eligible, screen_failed               eligible             eligibility_evaluate
screen_fail        screening, eligible, screen_failed               screen_failed        eligibility_evaluate
screen_incomplete  screening, eligible, screen_failed               screening            eligibility_evaluate
enroll             eligible                                         enrolled             enroll_participant
infuse             enrolled                                         infused              finishing the infusion
follow_up          infused                                          in_follow_up         the first visit recorded
complete           infused, in_follow_up                            completed            the last visit recorded
flag_lost          infused, in_follow_up                            ltfu_pending         N consecutive visits missed
confirm_lost       ltfu_pending                                     lost_to_follow_up    an investigator confirms
dismiss_lost       ltfu_pending                                     in_follow_up         an investigator dismisses;
                                                                                         a visit done
withdraw           every status but withdrawn and completed         withdrawn            participant_withdraw
=================  ===============================================  ===================  =========================

A transition the table does not allow is refused (``participant_transition_not_allowed``); callers check
first (``participant_transition_allowed``) and refuse in their own words.
"""

import enum
from collections.abc import Sequence

from cohorts.models import Participant
from core.errors import ErrorCode, RuleViolation
from core.history import audit, audited_bulk_update

Status = Participant.Status


class ParticipantTransition(enum.StrEnum):
    SCREEN_ELIGIBLE = "screen_eligible"
    SCREEN_FAIL = "screen_fail"
    SCREEN_INCOMPLETE = "screen_incomplete"
    ENROLL = "enroll"
    INFUSE = "infuse"
    FOLLOW_UP = "follow_up"
    COMPLETE = "complete"
    FLAG_LOST = "flag_lost"
    CONFIRM_LOST = "confirm_lost"
    DISMISS_LOST = "dismiss_lost"
    WITHDRAW = "withdraw"


SCREENING = frozenset({Status.SCREENING, Status.ELIGIBLE, Status.SCREEN_FAILED})
# Followed after the infusion: the follow-up sweep marks these participants' overdue visits missed.
FOLLOWED = frozenset({Status.INFUSED, Status.IN_FOLLOW_UP, Status.LOST_TO_FOLLOW_UP_PENDING})

T = ParticipantTransition
# transition -> (the statuses it starts from, the status it ends in)
PARTICIPANT_TRANSITIONS: dict[ParticipantTransition, tuple[frozenset[str], str]] = {
    T.SCREEN_ELIGIBLE:   (SCREENING, Status.ELIGIBLE),
    T.SCREEN_FAIL:       (SCREENING, Status.SCREEN_FAILED),
    T.SCREEN_INCOMPLETE: (SCREENING, Status.SCREENING),
    T.ENROLL:            (frozenset({Status.ELIGIBLE}), Status.ENROLLED),
    T.INFUSE:            (frozenset({Status.ENROLLED}), Status.INFUSED),
    T.FOLLOW_UP:         (frozenset({Status.INFUSED}), Status.IN_FOLLOW_UP),
    T.COMPLETE:          (frozenset({Status.INFUSED, Status.IN_FOLLOW_UP}), Status.COMPLETED),
    T.FLAG_LOST:         (frozenset({Status.INFUSED, Status.IN_FOLLOW_UP}), Status.LOST_TO_FOLLOW_UP_PENDING),
    T.CONFIRM_LOST:      (frozenset({Status.LOST_TO_FOLLOW_UP_PENDING}), Status.LOST_TO_FOLLOW_UP),
    T.DISMISS_LOST:      (frozenset({Status.LOST_TO_FOLLOW_UP_PENDING}), Status.IN_FOLLOW_UP),
    T.WITHDRAW:          (frozenset(Status.values) - {Status.WITHDRAWN, Status.COMPLETED}, Status.WITHDRAWN),
}  # fmt: skip


def participant_transition_allowed(participant: Participant, transition: ParticipantTransition) -> bool:
    sources, _ = PARTICIPANT_TRANSITIONS[transition]
    return participant.status in sources


def _apply(participant: Participant, transition: ParticipantTransition) -> Participant:
    if not participant_transition_allowed(participant, transition):
        raise RuleViolation(
            ErrorCode.PARTICIPANT_TRANSITION_NOT_ALLOWED,
            f"{participant} is {participant.get_status_display().lower()}: she cannot {transition.replace('_', ' ')}.",
        )
    participant.status = PARTICIPANT_TRANSITIONS[transition][1]
    return participant


def participant_transition(
    *, participant: Participant, transition: ParticipantTransition, by, reason: str, save: bool = True
) -> Participant:
    """Apply ``transition`` to the (locked) ``participant``; save it with its audit row unless ``save`` is
    false (the caller saves the same row with other fields and the audit it gives)."""
    _apply(participant, transition)
    if save:
        audit(participant, by=by, reason=reason).save()
    return participant


def participants_transition(moves: Sequence[tuple[Participant, Sequence[ParticipantTransition], str]], *, by) -> None:
    """Apply to each locked participant its transitions, in order, with one reason: one UPDATE per batch and
    one history row each (the follow-up sweep)."""
    for participant, transitions, reason in moves:
        for transition in transitions:
            _apply(participant, transition)
        audit(participant, by=by, reason=reason)
    audited_bulk_update([participant for participant, _, _ in moves], ["status"])
