"""Tests for safety/rules.py: outcome notation, 3+3 and BOIN.

Expected values come from the reference implementations:

* 3+3: the test-suite of the R package ``escalation`` (tests/testthat/test_three_plus_three.R),
  whose expectations are copied here case by case (``strict_mode = FALSE`` there means
  ``strict=False`` here), plus the selector tests that run in strict mode;
* BOIN: ``BOIN::get.boundary`` (boundaries and decision table, including the well-known
  published table for target 0.3) and the published example in escalation's
  tests/testthat/test_boin.R.
"""

from __future__ import annotations

import math

import pytest

from safety.rules import (
    DESIGNS,
    BoinBoundary,
    CohortOutcome,
    DoseTally,
    InconsistentThreePlusThreeError,
    OutcomeNotationError,
    Recommendation,
    beta_cdf,
    boin,
    boin_boundaries,
    boin_decision_table,
    boin_eliminated_doses,
    boin_select_mtd,
    check_three_plus_three_path,
    compare,
    format_outcomes,
    parse_outcomes,
    prob_tox_exceeds,
    recommend,
    tally,
    three_plus_three,
)

# ---------------------------------------------------------------------------
# Outcome notation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1NNN 2NTN", [(1, "NNN"), (2, "NTN")]),
        ("1NNN 3NTT", [(1, "NNN"), (3, "NTT")]),
        # escalation accepts cohorts written back to back (regex allows zero spaces).
        ("1N2T2N2N2N", [(1, "N"), (2, "T"), (2, "N"), (2, "N"), (2, "N")]),
        ("5T", [(5, "T")]),
        ("1NTT 2T 2NTNNTN 3N", [(1, "NTT"), (2, "T"), (2, "NTNNTN"), (3, "N")]),
        ("96NTT 40T 1NTNNTN 174N", [(96, "NTT"), (40, "T"), (1, "NTNNTN"), (174, "N")]),
        (" 1NTT 2T\t2NTNNTN  2N \n", [(1, "NTT"), (2, "T"), (2, "NTNNTN"), (2, "N")]),
        ("01NN", [(1, "NN")]),
    ],
)
def test_valid_outcome_strings_parse_into_cohorts(text: str, expected: list[tuple[int, str]]) -> None:
    assert parse_outcomes(text) == [CohortOutcome(dose, outcomes) for dose, outcomes in expected]


@pytest.mark.parametrize("text", ["", " ", "   \t\n"])
def test_an_empty_or_blank_string_means_no_patients(text: str) -> None:
    assert parse_outcomes(text) == []


@pytest.mark.parametrize(
    ("text", "num_doses", "message", "position", "character"),
    [
        ("1NXN", None, "unexpected character 'X' at position 3 in \"1NXN\"", 3, "X"),
        ("N1", None, "unexpected character 'N' at position 1 in \"N1\": expected a dose level", 1, "N"),
        ("0NN", None, 'dose level 0 at position 1 in "0NN" is not allowed', 1, "0"),
        ("1T 0NN", None, 'dose level 0 at position 4 in "1T 0NN" is not allowed', 4, "0"),
        ("00NN", None, "dose level 00 at position 1", 1, "0"),
        ("1", None, 'cohort "1" at position 1 in "1" has no patient outcomes', 1, None),
        ("1 2NNN", None, 'cohort "1" at position 1 in "1 2NNN" has no patient outcomes', 1, None),
        ("1NT 3TNT 4", None, 'cohort "4" at position 10', 10, None),
        ("4NNN", 3, 'dose level 4 at position 1 in "4NNN" is above the highest dose level (3)', 1, "4"),
        ("1NNN 12N", 5, 'dose level 12 at position 6 in "1NNN 12N" is above the highest dose level (5)', 6, "1"),
        (
            "1nnn",
            None,
            "unexpected character 'n' at position 2 in \"1nnn\": outcome letters must be upper case",
            2,
            "n",
        ),
        ("1NtN", None, "unexpected character 't' at position 3", 3, "t"),
        ("12NTT Nigel Farage", None, "unexpected character 'N' at position 7", 7, "N"),
        ("1NT TNT", None, "unexpected character 'T' at position 5", 5, "T"),
        ("1NTT 2.0T", None, "unexpected character '.' at position 7", 7, "."),
        ("-1N", None, "unexpected character '-' at position 1", 1, "-"),
        (".1NTT", None, "unexpected character '.' at position 1", 1, "."),
        ("1NN,2NN", None, "unexpected character ',' at position 4", 4, ","),
    ],
)
def test_malformed_outcome_strings_name_the_bad_character_and_position(
    text: str, num_doses: int | None, message: str, position: int, character: str | None
) -> None:
    with pytest.raises(OutcomeNotationError) as caught:
        parse_outcomes(text, num_doses=num_doses)
    assert message in str(caught.value)
    assert caught.value.position == position
    assert caught.value.character == character
    assert isinstance(caught.value, ValueError)


def test_the_designs_reject_a_dose_above_num_doses_with_the_notation_error() -> None:
    with pytest.raises(OutcomeNotationError, match=r"dose level 4 at position 1 in \"4NNN\" is above"):
        three_plus_three("4NNN", num_doses=3)
    with pytest.raises(OutcomeNotationError, match=r"dose level 4 in cohort 1 \(\"4NNN\"\) is above"):
        boin([CohortOutcome(4, "NNN")], num_doses=3, target=0.3)


@pytest.mark.parametrize(
    ("dose", "outcomes", "message"),
    [
        (0, "NNN", "dose level 0 is not allowed"),
        (1, "", "no patient outcomes"),
        (1, "NXN", "unexpected character 'X'"),
        (1, "nnn", "unexpected character 'n'"),
    ],
)
def test_cohort_outcomes_built_in_code_are_validated(dose: int, outcomes: str, message: str) -> None:
    with pytest.raises(OutcomeNotationError, match=message):
        CohortOutcome(dose, outcomes)


def test_a_cohort_counts_its_patients_and_dlts() -> None:
    cohort = CohortOutcome(2, "NTNT")
    assert (cohort.n, cohort.tox, str(cohort)) == (4, 2, "2NTNT")


def test_tally_aggregates_patients_and_dlts_per_dose() -> None:
    cohorts = parse_outcomes("1NNN 2NTN 2TT 1N")
    assert tally(cohorts) == {1: DoseTally(4, 0), 2: DoseTally(5, 3)}
    assert tally(cohorts, num_doses=3) == {1: DoseTally(4, 0), 2: DoseTally(5, 3), 3: DoseTally(0, 0)}
    assert tally(cohorts)[2].rate == pytest.approx(0.6)
    assert tally([], num_doses=1)[1].rate is None


def test_formatting_cohorts_gives_back_the_notation() -> None:
    assert format_outcomes(parse_outcomes(" 1NNN   2NTN ")) == "1NNN 2NTN"


# ---------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "allow_deescalate", "dose", "cont", "mtd"),
    [
        ("", False, 1, True, None),
        ("", True, 1, True, None),
        ("1NNN", False, 2, True, None),
        ("1NNT", False, 1, True, None),
        ("1NTT", False, None, False, None),
        ("1NTT", True, None, False, None),
        ("1TTT", False, None, False, None),
        ("1NNN 2NNT 2NNN", False, 3, True, None),
        ("1NNN 2NNT 2NNN", True, 3, True, None),
        # 2/6 at dose 2: without de-escalation R stops and recommends dose 1 although it has only 3 patients;
        ("1NNN 2NNT 2NNT", False, 1, False, 1),
        # with Korn de-escalation dose 1 has fewer than 6 patients, so go back and treat 3 more there.
        ("1NNN 2NNT 2NNT", True, 1, True, None),
        ("1NNN 2NNT 2NNT 1NNN", True, 1, False, 1),
        ("1NNN 2NNT 2NNT 1NNT", True, 1, False, 1),
        ("1NNN 2NNT 2NNT 1NTT", True, None, False, None),
        ("1NNN 2NTT", False, 1, False, 1),
        ("1NNN 2NTT", True, 1, True, None),
        # Top dose: 0/3 stops at once (no expansion to 6) and recommends the top dose.
        ("1NNN 2NNN 3NNN", False, 3, False, 3),
        ("1NNN 2NNN 3NNN", True, 3, False, 3),
        ("1NNN 2NNN 3NNT", False, 3, True, None),
        # Top dose: 1/6 stops with the top dose as MTD.
        ("1NNN 2NNN 3NNT 3NNN", False, 3, False, 3),
        ("1NNN 2NNN 3NNT 3NNT", False, 2, False, 2),
        ("1NNN 2NNN 3NNT 3NNT", True, 2, True, None),
        ("1NNN 2NNN 3NTT", False, 2, False, 2),
        ("1NNN 2NNN 3NTT 2NNN", True, 2, False, 2),
    ],
)
def test_three_plus_three_with_three_doses_matches_the_reference(
    outcomes: str, allow_deescalate: bool, dose: int | None, cont: bool, mtd: int | None
) -> None:
    advice = three_plus_three(outcomes, num_doses=3, allow_deescalate=allow_deescalate)
    assert (advice.recommended_dose, advice.continue_, advice.mtd) == (dose, cont, mtd)


# Copied from escalation tests/testthat/test_three_plus_three.R,
# 'Check 3+3 makes correct recommendations.' (num_doses = 5, strict_mode = FALSE).
R_THREE_PLUS_THREE = [
    ("", 1, True),
    ("1N", 1, True),
    ("1T", 1, True),
    ("1NN", 1, True),
    ("1NT", 1, True),
    ("1TT", 1, True),
    ("1NNN", 2, True),
    ("1NNT", 1, True),
    ("1NTT", None, False),
    ("1TTT", None, False),
    ("1NNN 2N", 2, True),
    ("1NNN 2T", 2, True),
    ("1NNN 2NN", 2, True),
    ("1NNN 2NT", 2, True),
    ("1NNN 2TT", 2, True),
    ("1NNN 2NNN", 3, True),
    ("1NNN 2NNT", 2, True),
    ("1NNN 2NTT", 1, False),
    ("1NNN 2TTT", 1, False),
    ("1NNN 2NNT 2N", 2, True),
    ("1NNN 2NNT 2T", 2, True),
    ("1NNN 2NNT 2NN", 2, True),
    ("1NNN 2NNT 2NT", 2, True),
    ("1NNN 2NNT 2TT", 2, True),
    ("1NNN 2NNT 2NNN", 3, True),
    ("1NNN 2NNT 2NNT", 1, False),
    ("1NNN 2NNT 2NTT", 1, False),
    ("1NNN 2NNN 3NNN 4NNN 5N", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NN", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNN", 5, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NTT", 4, False),
    ("1NNN 2NNN 3NNN 4NNN 5TTT", 4, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5N", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NN", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NT", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5TT", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NNN", 5, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NNT", 4, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NTT", 4, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5TTT", 4, False),
    # '3+3 advice is sensible even when path has diverged from algorithm'
    ("1NNN 1T", 1, True),
    ("1NNN 1NNT", 2, True),
    ("1NNN 1NTT", None, False),
    ("1NNN 1TTT", None, False),
]


@pytest.mark.parametrize(("outcomes", "dose", "cont"), R_THREE_PLUS_THREE)
def test_three_plus_three_reproduces_the_r_reference_without_deescalation(
    outcomes: str, dose: int | None, cont: bool
) -> None:
    advice = three_plus_three(outcomes, num_doses=5, strict=False)
    assert (advice.recommended_dose, advice.continue_) == (dose, cont)


# Copied from escalation tests/testthat/test_three_plus_three.R,
# 'Check 3+3 makes correct recommendations with de-escalation.' (num_doses = 5, strict_mode = FALSE).
_TOP = "1NNN 2NNN 3NNN 4NNN 5NNT 5TTT"
R_THREE_PLUS_THREE_KORN = [
    ("", 1, True),
    ("1NNN", 2, True),
    ("1NNT", 1, True),
    ("1NTT", None, False),
    ("1TTT", None, False),
    ("1NNN 2TT", 2, True),
    ("1NNN 2NNN", 3, True),
    ("1NNN 2NNT", 2, True),
    ("1NNN 2NTT", 1, True),
    ("1NNN 2TTT", 1, True),
    ("1NNN 2NNT 2NNN", 3, True),
    ("1NNN 2NNT 2NNT", 1, True),
    ("1NNN 2NNT 2NTT", 1, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNN", 5, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT", 5, True),
    ("1NNN 2NNN 3NNN 4NNN 5NTT", 4, True),
    ("1NNN 2NNN 3NNN 4NNN 5TTT", 4, True),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NNN", 5, False),
    ("1NNN 2NNN 3NNN 4NNN 5NNT 5NNT", 4, True),
    (_TOP, 4, True),
    (f"{_TOP} 4N", 4, True),
    (f"{_TOP} 4TT", 4, True),
    (f"{_TOP} 4NNN", 4, False),
    (f"{_TOP} 4NNT", 4, False),
    (f"{_TOP} 4NTT", 3, True),
    (f"{_TOP} 4TTT", 3, True),
    (f"{_TOP} 4NTT 3NNN", 3, False),
    (f"{_TOP} 4NTT 3NNT", 3, False),
    (f"{_TOP} 4NTT 3NTT", 2, True),
    (f"{_TOP} 4NTT 3TTT 2NNN", 2, False),
    (f"{_TOP} 4NTT 3TTT 2NTT", 1, True),
    (f"{_TOP} 4NTT 3TTT 2NTT 1NN", 1, True),
    (f"{_TOP} 4NTT 3TTT 2NTT 1NNN", 1, False),
    (f"{_TOP} 4NTT 3TTT 2NTT 1NNT", 1, False),
    (f"{_TOP} 4NTT 3TTT 2NTT 1NTT", None, False),
    (f"{_TOP} 4NTT 3TTT 2NTT 1TTT", None, False),
    # 'A few more manual checks'
    ("1NNN 2NNN 3NTT", 2, True),
    ("1NNN 2NNN 2NNN 3NTT", 2, False),
    ("1NTN 1NNN 2NNN 3NTT", 2, True),
    ("1NTN 1NNN 2NTN 2NNN 3NTT", 2, False),
    ("1NTN 1NTN 2NTN 2NNN 3NTT", 2, False),
    ("1NTN 1NTN 2NTN 2NTN 3NTT", None, False),
]


@pytest.mark.parametrize(("outcomes", "dose", "cont"), R_THREE_PLUS_THREE_KORN)
def test_three_plus_three_reproduces_the_r_reference_with_korn_deescalation(
    outcomes: str, dose: int | None, cont: bool
) -> None:
    advice = three_plus_three(outcomes, num_doses=5, allow_deescalate=True, strict=False)
    assert (advice.recommended_dose, advice.continue_) == (dose, cont)


# Copied from 'three_plus_three_selector de-escalates from doses higher than 1': these go through
# get_three_plus_three(num_doses = 5, allow_deescalate = TRUE), i.e. in strict mode.
@pytest.mark.parametrize(
    ("outcomes", "dose", "cont"),
    [
        ("2NNT 2NNN", 3, True),
        ("2NNT 2NNT", 1, True),
        ("2NNT 2NNT 1N", 1, True),
        ("2NNT 2NNT 1NNN", 1, False),
        ("2NNT 2NNT 1NNT", 1, True),
        ("2NNT 2NNT 1NTT", None, False),
        ("2NNT 2NTT 1NNN", 1, False),
        ("2NNT 2TTT 1NNT", 1, True),
        ("2NTT", 1, True),
        ("2NTT 1NNN", 1, False),
        ("2NTT 1NNT", 1, True),
        ("2NTT 1NTT", None, False),
        ("2NTT 1NNT 1NNN", 1, False),
        ("2NTT 1NNT 1NNT", None, False),
        ("2NTT 1NNT 1TTT", None, False),
    ],
)
def test_three_plus_three_deescalates_from_a_starting_dose_above_one_in_strict_mode(
    outcomes: str, dose: int | None, cont: bool
) -> None:
    advice = three_plus_three(outcomes, num_doses=5, allow_deescalate=True)
    assert (advice.recommended_dose, advice.continue_) == (dose, cont)


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ("1NNN 1N", "dose 1 had no DLT but was given to 4 patients"),
        ("1NNN 1NNN", "dose 1 had no DLT but was given to 6 patients"),
        ("1NNN 2NNT 2NNN 4N", r"dose\(s\) 3 were skipped"),
        ("1NNN 2TTT 1N", "dose 1 had no DLT but was given to 4 patients"),
        ("1NNT 1N 2N", "several cohorts are in progress"),
        ("1NNT 1NNN 1N", "dose 1 has been given to 7 patients"),
    ],
)
def test_strict_three_plus_three_rejects_paths_that_broke_the_rules(outcomes: str, message: str) -> None:
    with pytest.raises(InconsistentThreePlusThreeError, match=message):
        three_plus_three(outcomes, num_doses=5)


def test_strict_mode_reports_an_incomplete_cohort_left_behind() -> None:
    with pytest.raises(InconsistentThreePlusThreeError, match="cohort at dose 1 is incomplete"):
        check_three_plus_three_path([CohortOutcome(1, "NT"), CohortOutcome(2, "NNN")])


def test_strict_mode_allows_a_dlt_free_dose_to_reach_six_after_korn_deescalation() -> None:
    advice = three_plus_three("1NNN 2TTT 1N", num_doses=5, allow_deescalate=True)
    assert (advice.recommended_dose, advice.continue_) == (1, True)
    assert three_plus_three("1NNN 2TTT 1NNN", num_doses=5, allow_deescalate=True).mtd == 1


def test_more_than_six_patients_at_the_current_dose_is_an_error_even_when_not_strict() -> None:
    with pytest.raises(InconsistentThreePlusThreeError, match="7 patients"):
        three_plus_three("1NNT 1NNN 1N", num_doses=3, strict=False)


def test_strict_mode_accepts_a_legitimate_path() -> None:
    check_three_plus_three_path("1NNN 2NTN 2NNN 3NN")  # does not raise
    assert three_plus_three("1NNN 2NTN 2NNN 3NN", num_doses=3).recommended_dose == 3


@pytest.mark.parametrize(
    ("outcomes", "allow_deescalate", "reason"),
    [
        ("", False, "No patients have been treated yet: start at dose 1."),
        ("1NNN", False, "0 of 3 patients at dose 1 had a DLT: escalate to dose 2."),
        ("1NNT", False, "1 of 3 patients at dose 1 had a DLT: expand dose 1 to 6 patients."),
        (
            "1NN",
            False,
            "0 of 2 patients at dose 1 had a DLT so far; the cohort of 3 is not complete: continue at dose 1.",
        ),
        (
            "1NTT",
            False,
            "2 of 3 patients at dose 1 had a DLT, which is too toxic, and there is no lower dose: "
            "stop the trial; no dose is recommended.",
        ),
        (
            "1NNN 2NNT 2NNT",
            False,
            "2 of 6 patients at dose 2 had a DLT, which is too toxic: stop escalation "
            "and recommend dose 1 (0 of 3 patients had a DLT there).",
        ),
        (
            "1NNN 2NNT 2NNT",
            True,
            "2 of 6 patients at dose 2 had a DLT, which is too toxic: de-escalate to "
            "dose 1, which has only 3 patients, so that 6 are treated there.",
        ),
        (
            "1NNN 2NNN 3NNN",
            False,
            "0 of 3 patients at dose 3 had a DLT and dose 3 is the highest dose: stop and recommend dose 3.",
        ),
    ],
)
def test_three_plus_three_explains_its_advice_in_plain_words(
    outcomes: str, allow_deescalate: bool, reason: str
) -> None:
    assert three_plus_three(outcomes, num_doses=3, allow_deescalate=allow_deescalate).reason == reason


def test_recommendation_to_dict_has_exactly_the_three_public_keys() -> None:
    assert three_plus_three("1NTT", num_doses=3).to_dict() == {
        "recommended_dose": None,
        "continue": False,
        "reason": "2 of 3 patients at dose 1 had a DLT, which is too toxic, and there is no lower dose: "
        "stop the trial; no dose is recommended.",
    }
    assert list(three_plus_three("1NNN", num_doses=3).to_dict()) == ["recommended_dose", "continue", "reason"]


def test_parsed_cohorts_and_strings_give_the_same_advice() -> None:
    text = "1NNN 2NNT 2NNN"
    assert three_plus_three(parse_outcomes(text), num_doses=3) == three_plus_three(text, num_doses=3)
    assert boin(parse_outcomes(text), num_doses=3, target=0.3) == boin(text, num_doses=3, target=0.3)


@pytest.mark.parametrize("num_doses", [0, -1, True, 2.0])
def test_num_doses_must_be_a_positive_whole_number(num_doses: object) -> None:
    with pytest.raises(ValueError, match="num_doses must be a whole number of at least 1"):
        three_plus_three("1NNN", num_doses=num_doses)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# BOIN: boundaries and decision table
# ---------------------------------------------------------------------------


# Values of the get.boundary formula (default p.saf = 0.6 target, p.tox = 1.4 target); to three
# decimals they are the published Liu & Yuan (2015) values, e.g. 0.3 -> (0.236, 0.358/0.359).
@pytest.mark.parametrize(
    ("target", "lambda_e", "lambda_d"),
    [
        (0.15, 0.1178, 0.1787),
        (0.20, 0.1572, 0.2385),
        (0.25, 0.1968, 0.2984),
        (0.30, 0.2365, 0.3585),
        (0.35, 0.2763, 0.4189),
        (0.40, 0.3164, 0.4797),
    ],
)
def test_boin_boundaries_match_get_boundary(target: float, lambda_e: float, lambda_d: float) -> None:
    got_e, got_d = boin_boundaries(target)
    assert (round(got_e, 4), round(got_d, 4)) == (lambda_e, lambda_d)


def test_boin_boundaries_use_custom_p_saf_and_p_tox() -> None:
    got_e, got_d = boin_boundaries(0.3, p_saf=0.15, p_tox=0.45)
    assert (round(got_e, 4), round(got_d, 4)) == (0.2188, 0.3730)
    expected_e = math.log((1 - 0.15) / (1 - 0.3)) / math.log(0.3 * (1 - 0.15) / (0.15 * (1 - 0.3)))
    assert got_e == expected_e


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.01}, "too low"),
        ({"target": 0.7}, "too high"),
        ({"target": 0.3, "p_saf": 0.28}, "p_saf"),
        ({"target": 0.3, "p_tox": 0.31}, "p_tox"),
        ({"target": 0.3, "p_saf": 0.0}, "p_saf"),
    ],
)
def test_boin_boundaries_reject_the_inputs_r_boin_rejects(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        boin_boundaries(**kwargs)


# The well-known BOIN decision table for target 0.3 (get.boundary(target = 0.3, ...)$full_boundary_tab):
# n, escalate if DLTs <=, de-escalate if DLTs >=, eliminate if DLTs >= (None = NA).
TABLE_TARGET_030 = [
    (1, 0, 1, None),
    (2, 0, 1, None),
    (3, 0, 2, 3),
    (4, 0, 2, 3),
    (5, 1, 2, 4),
    (6, 1, 3, 4),
    (7, 1, 3, 5),
    (8, 1, 3, 5),
    (9, 2, 4, 5),
    (10, 2, 4, 6),
    (11, 2, 4, 6),
    (12, 2, 5, 7),
    (13, 3, 5, 7),
    (14, 3, 6, 8),
    (15, 3, 6, 8),
    (16, 3, 6, 8),
    (17, 4, 7, 9),
    (18, 4, 7, 9),
]


@pytest.mark.parametrize(("n", "escalate", "deescalate", "eliminate"), TABLE_TARGET_030)
def test_boin_decision_table_for_target_030_matches_the_published_table(
    n: int, escalate: int, deescalate: int, eliminate: int | None
) -> None:
    row = boin_decision_table(0.3, 18)[n - 1]
    assert row == BoinBoundary(n, escalate, deescalate, eliminate)


@pytest.mark.parametrize(
    ("n", "escalate", "deescalate", "eliminate"),
    [(3, 0, 1, 3), (6, 1, 2, 4), (9, 1, 3, 5), (12, 2, 4, 6)],
)
def test_boin_decision_table_for_target_025(n: int, escalate: int, deescalate: int, eliminate: int) -> None:
    assert boin_decision_table(0.25, 12)[n - 1] == BoinBoundary(n, escalate, deescalate, eliminate)


def test_boin_decision_table_caps_deescalation_at_the_elimination_boundary() -> None:
    # cutoff 0.9: 2 of 3 gives Pr(p > 0.3) = 0.916 > 0.9, so elimination is at 2 DLTs in 3.
    # At target 0.5, cutoff 0.8 and n = 20, ceiling(lambda_d * 20) = 13 exceeds the elimination boundary
    # (12) and is capped to it: get.boundary's  if(b.d[i]>elim[i]) b.d[i]=elim[i]
    row = boin_decision_table(0.3, 3, cutoff_eli=0.9)[2]
    assert row == BoinBoundary(3, 0, 2, 2)
    capped = boin_decision_table(0.5, 20, cutoff_eli=0.8)[19]
    _, lambda_d = boin_boundaries(0.5)
    assert math.ceil(lambda_d * 20) == 13
    assert capped == BoinBoundary(20, 7, 12, 12)


def test_boin_decision_table_has_no_elimination_below_three_patients() -> None:
    rows = boin_decision_table(0.3, 2)
    assert [row.eliminate_at_least for row in rows] == [None, None]


@pytest.mark.parametrize(
    ("x", "a", "b", "expected"),
    [
        (0.3, 1, 1, 0.3),
        (0.3, 4, 1, 0.3**4),
        (0.3, 1, 4, 1 - 0.7**4),
        (0.5, 5, 5, 0.5),
        (0.3, 3, 2, 0.0837),  # P(Bin(4, 0.3) >= 3) = 4 * 0.027 * 0.7 + 0.0081
        (0.0, 2, 3, 0.0),
        (1.0, 2, 3, 1.0),
    ],
)
def test_beta_cdf_uses_the_exact_binomial_identity(x: float, a: int, b: int, expected: float) -> None:
    assert beta_cdf(x, a, b) == pytest.approx(expected, abs=1e-12)


def test_probability_of_exceeding_the_target_after_three_of_three_dlts() -> None:
    assert prob_tox_exceeds(0.3, 3, 3) == pytest.approx(1 - 0.3**4)
    assert prob_tox_exceeds(0.3, 3, 2) == pytest.approx(1 - 0.0837)


# ---------------------------------------------------------------------------
# BOIN: next-dose decisions
# ---------------------------------------------------------------------------

# The published example in escalation tests/testthat/test_boin.R: get_boin(num_doses = 5, target = 0.3).
_EX = "1NNN 2NNN 3NTT 2NTN 3NNN 3NNN 4TTT"
BOIN_PUBLISHED_EXAMPLE = [
    ("1NNN", 2),
    ("1NNN 2NNN", 3),
    ("1NNN 2NNN 3NTT", 2),
    ("1NNN 2NNN 3NTT 2NTN", 3),
    ("1NNN 2NNN 3NTT 2NTN 3NNN", 3),
    ("1NNN 2NNN 3NTT 2NTN 3NNN 3NNN", 4),
    (_EX, 3),
    (f"{_EX} 3NTN", 3),
    (f"{_EX} 3NTN 3NNT", 3),
    (f"{_EX} 3NTN 3NNT 3TNN", 3),
]


@pytest.mark.parametrize(("outcomes", "dose"), BOIN_PUBLISHED_EXAMPLE)
def test_boin_follows_the_published_example(outcomes: str, dose: int) -> None:
    advice = boin(outcomes, num_doses=5, target=0.3)
    assert (advice.recommended_dose, advice.continue_) == (dose, True)


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "dose", "cont"),
    [
        ("", {}, 1, True),
        ("1NN", {}, 2, True),  # n = 2: escalate if 0 DLTs
        ("1NT", {}, 1, True),  # n = 2: de-escalate if >= 1, but dose 1 is the lowest dose
        ("1NNN 2NTN", {}, 2, True),  # 1/3 lies between the boundaries: stay
        ("1NNN 2NTN", {"target": 0.25}, 1, True),  # target 0.25: de-escalate if >= 1 of 3
        ("1NNN 2NNT 2NNN", {}, 3, True),  # 1/6 <= floor(0.2365 * 6) = 1: escalate
        ("1NNN 2NNN 3NNN", {"num_doses": 3}, 3, True),  # top dose: stay there, keep going
        ("1NTT", {}, 1, True),  # 2/3 at dose 1: cannot de-escalate, not eliminated (needs 3/3)
        ("1NTT", {"extrasafe": True}, None, False),  # Pr(p > 0.3) = 0.916 > 0.95 - 0.05
        ("1TTT", {}, None, False),  # lowest dose eliminated: stop
        ("1TTT", {"use_stopping_rule": False}, 1, True),
        ("1NNN 2TTT", {}, 1, True),  # dose 2 and above eliminated: go to dose 1
        ("1NNN 2TTT 1NNN", {}, 1, True),  # would escalate, but dose 2 is eliminated: stay
        ("1NNN 2NNN 3NTT 3TTT", {}, 2, True),  # 5/6 >= 4: eliminate dose 3 and above
        ("1NTN 1NTT 1T", {}, 1, True),  # 4/7 >= 3 but < 5 (elimination at n = 7): stay at the lowest dose
        ("1NTN 1NTT 1TT", {}, None, False),  # 5/8 reaches the elimination boundary 5: stop
        ("1NNN 2NTT 1NTT", {}, 1, True),  # 2/6 at dose 1: stay
        ("1TTT 2NNN", {}, None, False),  # documented: dose 1 eliminated, so stop (get_boin would say 3)
    ],
)
def test_boin_next_dose_decisions(outcomes: str, kwargs: dict[str, object], dose: int | None, cont: bool) -> None:
    options: dict[str, object] = {"num_doses": 5, "target": 0.3, **kwargs}
    advice = boin(outcomes, **options)  # type: ignore[arg-type]
    assert (advice.recommended_dose, advice.continue_) == (dose, cont)
    assert advice.mtd is None


def test_boin_explains_escalation_with_the_boundary() -> None:
    assert boin("1NNN", num_doses=5, target=0.3).reason == (
        "0 of 3 patients at dose 1 had a DLT (rate 0.000), at or below the escalation boundary 0.2365 "
        "(escalate if at most 0 DLTs in 3): escalate to dose 2."
    )


def test_boin_explains_elimination_and_stopping() -> None:
    eliminated = boin("1NNN 2TTT", num_doses=5, target=0.3).reason
    assert "dose 2 and all higher doses are eliminated: de-escalate to dose 1." in eliminated
    assert "the probability that the DLT rate at dose 2 exceeds the target 0.3 is 0.992" in eliminated
    stopped = boin("1TTT", num_doses=5, target=0.3).reason
    assert stopped.endswith("stop the trial; no dose is recommended.")
    assert "(extra-safe rule)" in boin("1NTT", num_doses=5, target=0.3, extrasafe=True).reason


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "eliminated"),
    [
        ("1NNN 2NNN 3TTT", {}, (3, 4, 5)),
        ("1NNN 2NNN 3NTT", {}, ()),
        ("1TTT", {}, (1, 2, 3, 4, 5)),
        ("1NTT", {}, ()),
        ("1NTT", {"extrasafe": True}, (1, 2, 3, 4, 5)),
        ("1NTT", {"cutoff_eli": 0.9}, (1, 2, 3, 4, 5)),
    ],
)
def test_boin_eliminates_a_dose_and_every_higher_dose(
    outcomes: str, kwargs: dict[str, object], eliminated: tuple[int, ...]
) -> None:
    options: dict[str, object] = {"num_doses": 5, "target": 0.3, **kwargs}
    assert boin_eliminated_doses(outcomes, **options) == eliminated  # type: ignore[arg-type]


def test_boin_selects_the_mtd_like_select_mtd_in_the_r_example() -> None:
    # BOIN::select.mtd example: npts = c(3, 3, 15, 9, 0), ntox = c(0, 0, 4, 4, 0), target = 0.3.
    cohorts = [
        CohortOutcome(1, "NNN"),
        CohortOutcome(2, "NNN"),
        CohortOutcome(3, "TTTT" + "N" * 11),
        CohortOutcome(4, "TTTT" + "N" * 5),
    ]
    assert boin_select_mtd(cohorts, num_doses=5, target=0.3) == 3
    assert boin_select_mtd("1TTT", num_doses=5, target=0.3) is None
    assert boin_select_mtd("", num_doses=5, target=0.3) is None


def test_boin_select_mtd_pools_adjacent_violators() -> None:
    # Dose 1 looks worse than dose 2 (2/6 vs 0/3): PAVA pools them into one estimate (about 0.05) and
    # the i * 1e-10 tie-breaker makes dose 2 the closer one to the target.
    assert boin_select_mtd("1NNN 1NTT 2NNN", num_doses=3, target=0.3) == 2


def test_boin_select_mtd_can_bound_the_estimate_below_lambda_d() -> None:
    # 3/6 at dose 3: estimate 3.05 / 6.1 = 0.5 is closest to 0.3 but above lambda_d = 0.3585.
    assert boin_select_mtd("1NNN 2NNN 3TTTNNN", num_doses=3, target=0.3) == 3
    assert boin_select_mtd("1NNN 2NNN 3TTTNNN", num_doses=3, target=0.3, bound_mtd=True) == 2


# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("design", "expected_design"),
    [("3+3", "3+3"), ("three_plus_three", "3+3"), (" BOIN ", "BOIN"), ("boin", "BOIN")],
)
def test_recommend_dispatches_by_design_name(design: str, expected_design: str) -> None:
    advice = recommend(design, "1NNN 2NTT", num_doses=3)
    assert isinstance(advice, Recommendation)
    assert advice.design == expected_design


def test_recommend_passes_options_to_the_chosen_design() -> None:
    assert recommend("3+3", "1NNN 2NTT", num_doses=3).continue_ is False
    assert recommend("3+3", "1NNN 2NTT", num_doses=3, allow_deescalate=True).continue_ is True
    assert recommend("boin", "1NNN 2NTN", num_doses=3).recommended_dose == 2
    assert recommend("boin", "1NNN 2NTN", num_doses=3, target=0.25).recommended_dose == 1


def test_recommend_rejects_an_unknown_design_with_the_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown design 'crm': choose one of \"3\+3\", \"boin\""):
        recommend("crm", "1NNN", num_doses=3)


def test_compare_runs_both_designs_side_by_side() -> None:
    both = compare("1NNN 2NNT 2NNT", num_doses=3)
    assert set(both) == set(DESIGNS) == {"3+3", "boin"}
    assert (both["3+3"].recommended_dose, both["3+3"].continue_) == (1, False)
    assert (both["boin"].recommended_dose, both["boin"].continue_) == (2, True)
