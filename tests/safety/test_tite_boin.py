"""TITE-BOIN (safety/dosefinding/tite_boin.py): Yuan, Lin, Li, Nie & Warren, Clin Cancer Res 2018.

The published decision table checked here is Table 1 of a TITE-BOIN protocol paper (Contemp Clin Trials
Commun, PMC9260438, citing Yuan et al. 2018): 3, 6 and 9 treated, the DLTs, the number pending and the STFT
thresholds. Its caption does not give the target in the part we could read; every threshold matches the
formulas with target 0.2 (lambda_e 0.157, lambda_d 0.238) to the two decimals printed.
"""

from __future__ import annotations

import json

import pytest

from safety import rules
from safety.dosefinding import TiteParticipant, dose_paths, make_design, tite_boin, tite_boin_decision_table
from safety.dosefinding.tite_boin import tite_boin_estimate

WINDOW = 28.0


def _complete(outcomes: str) -> list[TiteParticipant]:
    """Everyone in ``outcomes`` with the window complete (a DLT on day 10, or 28 days without one)."""
    return [
        TiteParticipant(dose=c.dose, dlt=letter == "T", followup_days=10.0 if letter == "T" else WINDOW)
        for c in rules.parse_outcomes(outcomes)
        for letter in c.outcomes
    ]


def _at_dose(dose: int, dlts: int, done: int, pending_days: list[float]) -> list[TiteParticipant]:
    """At ``dose``: ``dlts`` with a DLT, ``done`` completed without one, one pending per follow-up given."""
    return (
        [TiteParticipant(dose, True, 5.0) for _ in range(dlts)]
        + [TiteParticipant(dose, False, WINDOW) for _ in range(done)]
        + [TiteParticipant(dose, None, days) for days in pending_days]
    )


HISTORIES = ["", "1NNN", "1NTN", "1NTT", "1TTT", "1NNN 2NTN", "1NNN 2TTT", "1NNN 2NNN 3NNN", "1NNN 2NNT 2TTN",
             "1NNN 2NNN 3NTT 2NNN", "1NNT 1NNN 2NTT 1TTN", "1NNN 2TTN 1TTT"]  # fmt: skip


@pytest.mark.parametrize("target", [0.25, 0.30])
@pytest.mark.parametrize("outcomes", HISTORIES)
def test_with_full_follow_up_for_everyone_tite_boin_is_boin(outcomes, target):
    tite = tite_boin(_complete(outcomes), num_doses=3, target=target)
    boin = rules.boin(outcomes, num_doses=3, target=target)
    assert (tite.recommended_dose, tite.continue_, tite.reason) == (boin.recommended_dose, boin.continue_, boin.reason)
    assert tite.suspended is False


def test_with_full_follow_up_tite_boin_is_boin_on_every_path_boin_can_take_in_three_cohorts():
    design = make_design("boin", num_doses=4, target=0.3)
    for node in dose_paths(design, "", cohorts=3).walk():
        tite = tite_boin(_complete(node.path), num_doses=4, target=0.3)
        assert (tite.recommended_dose, tite.continue_) == (node.recommended_dose, node.continue_), node.path


@pytest.mark.parametrize(
    ("n", "dlts", "pending", "suspended"),
    [
        (6, 0, 3, False),  # exactly half pending: not suspended
        (6, 0, 4, True),  # more than half: suspended
        (3, 0, 1, False),
        (3, 0, 2, True),
        (9, 1, 4, False),
        (9, 1, 5, True),
        (4, 0, 2, False),
        (4, 0, 3, True),
    ],
)
def test_accrual_is_suspended_only_when_more_than_half_are_pending(n, dlts, pending, suspended):
    people = _complete("1NNN") + _at_dose(2, dlts, n - dlts - pending, [14.0] * pending)
    advice = tite_boin(people, num_doses=3, target=0.3)
    assert advice.suspended is suspended
    if suspended:
        assert (advice.recommended_dose, advice.continue_) == (None, True)
        assert "suspended" in advice.reason
    else:
        assert advice.recommended_dose is not None


def test_a_dose_already_too_toxic_on_observed_dlts_is_left_without_waiting_for_the_pending():
    # Target 0.25: 1 DLT in 3 is above lambda_d 0.298, so two pending do not suspend: de-escalate.
    people = _complete("1NNN") + _at_dose(2, 1, 0, [3.0, 3.0])
    advice = tite_boin(people, num_doses=3, target=0.25)
    assert (advice.suspended, advice.recommended_dose) == (False, 1)


def test_the_safety_rule_counts_pending_participants_as_treated_and_stops_when_dose_1_is_eliminated():
    advice = tite_boin(_at_dose(1, 3, 0, [2.0]), num_doses=3, target=0.3)  # 3 DLTs in 4: eliminated
    assert (advice.recommended_dose, advice.continue_, advice.suspended) == (None, False, False)
    assert advice.eliminated == (1, 2, 3)


# Yuan et al. 2018-style table (PMC9260438 Table 1), target 0.2: (n, DLTs, pending) -> decision.
PUBLISHED = [
    (3, 0, 1, "escalate", None, None),
    (3, 0, 2, "suspend", None, None),
    (3, 1, 2, "de-escalate", None, None),
    (3, 2, 1, "eliminate", None, None),
    (6, 0, 3, "escalate", None, None),
    (6, 0, 4, "suspend", None, None),
    (6, 1, 3, "stay", None, None),
    (6, 1, 4, "suspend", None, None),
    (6, 2, 4, "de-escalate", None, None),
    (6, 3, 3, "eliminate", None, None),
    (9, 0, 4, "escalate", None, None),
    (9, 0, 5, "suspend", None, None),
    (9, 1, 2, "escalate", None, None),
    (9, 1, 3, "depends on STFT", 0.77, None),
    (9, 1, 4, "depends on STFT", 2.15, None),
    (9, 1, 5, "suspend", None, None),
    (9, 2, 0, "stay", None, None),
    (9, 2, 1, "depends on STFT", None, 0.52),
    (9, 2, 2, "depends on STFT", None, 1.59),
    (9, 2, 3, "depends on STFT", None, 2.66),
    (9, 2, 4, "depends on STFT", None, 3.73),
    (9, 2, 5, "suspend", None, None),
    (9, 3, 6, "de-escalate", None, None),
    (9, 4, 5, "eliminate", None, None),
]


@pytest.mark.parametrize(("n", "dlts", "pending", "action", "escalate_at", "deescalate_at"), PUBLISHED)
def test_the_tabulated_rule_matches_the_published_tite_boin_table(n, dlts, pending, action, escalate_at, deescalate_at):
    rows = {(r.n, r.dlts, r.pending): r for r in tite_boin_decision_table(0.2, 9)}
    row = rows[(n, dlts, pending)]
    assert row.action == action
    assert (None if row.escalate_if_stft_at_least is None else round(row.escalate_if_stft_at_least, 2)) == escalate_at
    assert (
        None if row.deescalate_if_stft_at_most is None else round(row.deescalate_if_stft_at_most, 2)
    ) == deescalate_at


@pytest.mark.parametrize(
    ("dlts", "pending_days", "expected"),
    [
        # 9 treated, 1 DLT, 3 pending: escalate if STFT >= 0.7731 (3 x 7.22 of 28 days = 0.7736), else stay.
        (1, [7.22, 7.22, 7.22], 3),
        (1, [7.21, 7.21, 7.21], 2),
        # 9 treated, 2 DLTs, 1 pending: de-escalate if STFT <= 0.5198 (14.55 of 28 days = 0.5196), else stay.
        (2, [14.55], 1),
        (2, [14.56], 2),
    ],
)
def test_the_decision_flips_on_either_side_of_a_published_stft_threshold(dlts, pending_days, expected):
    people = _complete("1NNN") + _at_dose(2, dlts, 9 - dlts - len(pending_days), pending_days)
    assert tite_boin(people, num_doses=3, target=0.2).recommended_dose == expected


def test_the_numbers_used_are_reported_and_follow_the_imputation_formula():
    people = _complete("1NNN") + _at_dose(2, 2, 6, [14.0])
    advice = tite_boin(people, num_doses=3, target=0.2)
    numbers = advice.to_dict()["numbers"]
    assert (numbers["current_dose"], numbers["n"], numbers["dlts"], numbers["pending"], numbers["completed"]) == (
        2, 9, 2, 1, 8,
    )  # fmt: skip
    assert numbers["stft"] == pytest.approx(0.5)
    assert numbers["pi_hat"] == pytest.approx(2.1 / 9)
    assert numbers["imputed_dlts"] == pytest.approx(2 + (2.1 / 6.9) * 0.5)
    assert numbers["estimated_rate"] == pytest.approx((2 + (2.1 / 6.9) * 0.5) / 9)
    assert json.loads(json.dumps(advice.to_dict())) == advice.to_dict()
    assert advice.recommendation().to_dict() == {
        "recommended_dose": advice.recommended_dose, "continue": True, "reason": advice.reason,
    }  # fmt: skip


def test_with_nobody_pending_the_estimate_is_the_observed_rate():
    assert tite_boin_estimate(n=6, dlts=2, pending=0, stft=0.0, target=0.3).estimated_rate == 2 / 6


def test_a_pending_participant_past_the_window_counts_the_whole_window():
    person = TiteParticipant(dose=1, dlt=None, followup_days=40.0)
    assert (person.pending, person.followup_fraction) == (True, 1.0)


def test_the_current_dose_is_the_last_participants_unless_given():
    people = [*_complete("1NNN 2NNN"), TiteParticipant(1, None, 3.0)]
    assert tite_boin(people, num_doses=3, target=0.3).current_dose == 1
    assert tite_boin(people, num_doses=3, target=0.3, current_dose=2).recommended_dose == 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TiteParticipant(1, False, 20.0), "no DLT is known only once the window is complete"),
        (lambda: TiteParticipant(1, None, -1.0), "negative"),
        (lambda: TiteParticipant(0, None, 1.0), "dose"),
        (lambda: TiteParticipant(1, None, 1.0, window_days=0), "positive"),
        (lambda: TiteParticipant(1, 1, 1.0), "True, False or None"),
        (lambda: tite_boin([TiteParticipant(4, None, 1.0)], num_doses=3, target=0.3), "above the highest dose"),
        (lambda: tite_boin(_complete("1NNN"), num_doses=3, target=0.3, current_dose=2), "nobody has been treated"),
        (lambda: tite_boin([], num_doses=3, target=0.3, max_pending_fraction=1.0), "max_pending_fraction"),
        (lambda: tite_boin([], num_doses=3, target=0.9), "too high"),
    ],
)
def test_bad_input_is_refused_with_a_plain_message(build, message):
    with pytest.raises(ValueError, match=message):
        build()
