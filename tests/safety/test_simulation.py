"""Operating characteristics (safety/dosefinding/simulation.py).

The analytic cross-check uses the classic closed form of the 3+3 without de-escalation (as R escalation's
default): from a dose with true DLT rate p the design escalates with probability
``e(p) = (1-p)^3 + 3p(1-p)^2 * (1-p)^3`` (0 of 3, or 1 of 3 then 0 of 3), so it reaches dose d with
probability ``prod_{j<d} e(p_j)``, stops at d (recommending d - 1, or no dose at dose 1) with
probability ``reach(d) * (1 - e(p_d))`` and ends at the top dose with ``reach(top) * e(p_top)``; dose d
treats ``3 + 3 * 3p(1-p)^2`` patients on average once reached. Simulations here use a few hundred trials
and are compared within 4 Monte Carlo standard errors; the exact enumeration must agree to 1e-12.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from safety.dosefinding import exact_operating_characteristics, make_design, simulate_operating_characteristics

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 400


def _escalate(p: float) -> float:
    return (1 - p) ** 3 + 3 * p * (1 - p) ** 2 * (1 - p) ** 3


def _analytic_three_plus_three(rates: list[float]) -> dict[str, object]:
    """R escalation's answer when the 3+3 (no de-escalation) stops, and the mean numbers treated."""
    reach = [math.prod(_escalate(p) for p in rates[:d]) for d in range(len(rates))]
    stop_at = [reach[d] * (1 - _escalate(rates[d])) for d in range(len(rates))]
    answer = [stop_at[d + 1] for d in range(len(rates) - 1)] + [reach[-1] * _escalate(rates[-1])]
    treated = [reach[d] * (3 + 3 * 3 * p * (1 - p) ** 2) for d, p in enumerate(rates)]
    return {"answer": answer, "no_dose": stop_at[0], "treated": treated}


SCENARIOS = [[0.05, 0.15, 0.30], [0.10, 0.25, 0.50], [0.30, 0.45, 0.60], [0.02, 0.05, 0.10, 0.40]]


@pytest.mark.parametrize("rates", SCENARIOS)
def test_exact_enumeration_of_the_3_plus_3_equals_the_closed_form(rates):
    oc = exact_operating_characteristics(make_design("3+3", num_doses=len(rates)), rates)
    expected = _analytic_three_plus_three(rates)
    assert oc.recommended_at_stop == pytest.approx(expected["answer"], abs=1e-12)
    assert oc.prob_stop_early == pytest.approx(expected["no_dose"], abs=1e-12)
    assert oc.mean_treated == pytest.approx(expected["treated"], abs=1e-12)


@pytest.mark.parametrize("rates", SCENARIOS[:2])
def test_simulated_3_plus_3_agrees_with_the_closed_form_within_monte_carlo_error(rates):
    oc = simulate_operating_characteristics(make_design("3+3", num_doses=len(rates)), rates, trials=TRIALS, seed=7)
    expected = _analytic_three_plus_three(rates)
    for simulated, exact in zip([*oc.recommended_at_stop, oc.prob_stop_early],
                                [*expected["answer"], expected["no_dose"]], strict=True):  # fmt: skip
        assert abs(simulated - exact) <= 4 * math.sqrt(exact * (1 - exact) / TRIALS) + 1e-9


@pytest.mark.parametrize(
    ("design", "rates", "kwargs"),
    [
        (make_design("3+3", num_doses=3, variant="confirm_on_six"), [0.05, 0.15, 0.30], {}),
        (make_design("3+3", num_doses=3, variant="confirm_on_six"), [0.20, 0.40, 0.55], {}),
        (make_design("boin", num_doses=3, target=0.3), [0.05, 0.15, 0.30], {"max_cohorts": 6}),
        (make_design("boin", num_doses=3, target=0.25), [0.10, 0.25, 0.45], {"max_cohorts": 6}),
    ],
)
def test_simulation_agrees_with_the_exact_enumeration_within_monte_carlo_error(design, rates, kwargs):
    simulated = simulate_operating_characteristics(design, rates, trials=TRIALS, seed=11, **kwargs)
    exact = exact_operating_characteristics(design, rates, **kwargs)
    for got, want in zip(simulated.selection, exact.selection, strict=True):
        assert abs(got - want) <= 4 * math.sqrt(want * (1 - want) / TRIALS) + 1e-9
    assert simulated.mean_sample_size == pytest.approx(exact.mean_sample_size, abs=1.0)


def test_a_fixed_seed_reproduces_the_figures_exactly_and_another_seed_does_not():
    design = make_design("boin", num_doses=3)
    first = simulate_operating_characteristics(design, [0.1, 0.3, 0.5], trials=300, seed=2026, max_cohorts=6)
    again = simulate_operating_characteristics(design, [0.1, 0.3, 0.5], trials=300, seed=2026, max_cohorts=6)
    other = simulate_operating_characteristics(design, [0.1, 0.3, 0.5], trials=300, seed=2027, max_cohorts=6)
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())
    assert first.to_dict() != other.to_dict()


@pytest.mark.parametrize("variant", ["escalation_default", "confirm_on_six"])
def test_when_every_dose_is_safe_the_3_plus_3_most_often_ends_with_the_mtd_not_reached(variant):
    oc = simulate_operating_characteristics(
        make_design("3+3", num_doses=3, variant=variant), [0.01, 0.02, 0.03], trials=TRIALS, seed=3
    )
    assert oc.prob_not_reached > 0.8
    assert oc.prob_not_reached == max(oc.outcomes.values())
    assert oc.recommended_at_stop[2] == max(oc.recommended_at_stop)


def test_when_every_dose_is_safe_boin_selects_the_top_dose_most_often():
    oc = simulate_operating_characteristics(
        make_design("boin", num_doses=3), [0.01, 0.02, 0.05], trials=TRIALS, seed=3, max_cohorts=6
    )
    assert oc.selection[2] == max(oc.selection) and oc.selection[2] > 0.8


@pytest.mark.parametrize(
    ("design", "kwargs"),
    [
        (make_design("3+3", num_doses=3), {}),
        (make_design("3+3", num_doses=3, variant="confirm_on_six"), {}),
        (make_design("boin", num_doses=3), {"max_cohorts": 6}),
    ],
)
def test_when_dose_1_is_toxic_the_trial_most_often_stops_early_with_no_dose(design, kwargs):
    oc = simulate_operating_characteristics(design, [0.70, 0.80, 0.90], trials=TRIALS, seed=5, **kwargs)
    assert oc.prob_stop_early > 0.8
    assert oc.prob_no_mtd >= oc.prob_stop_early
    assert oc.mean_sample_size < 9


def test_boin_with_every_patient_free_of_dlt_climbs_to_the_top_and_stays_there():
    oc = exact_operating_characteristics(make_design("boin", num_doses=3), [0.0, 0.0, 0.0], max_cohorts=10)
    assert oc.mean_treated == (3.0, 3.0, 24.0)
    assert oc.selection == (0.0, 0.0, 1.0)


def test_boins_n_earlystop_ends_the_trial_once_the_current_dose_has_that_many_and_would_stay():
    oc = exact_operating_characteristics(
        make_design("boin", num_doses=3), [0.0, 0.0, 0.0], max_cohorts=10, n_earlystop=6
    )
    assert oc.mean_treated == (3.0, 3.0, 6.0)


def test_a_3_plus_3_where_every_patient_has_a_dlt_stops_after_three_at_dose_1():
    oc = exact_operating_characteristics(make_design("3+3", num_doses=3, variant="confirm_on_six"), [1.0, 1.0, 1.0])
    assert (oc.mean_sample_size, oc.prob_stop_early, oc.outcomes["none"]) == (3.0, 1.0, 1.0)


def test_3_plus_3_outcomes_are_reported_separately_and_add_up_to_one():
    oc = exact_operating_characteristics(make_design("3+3", num_doses=3), [0.05, 0.15, 0.30])
    assert set(oc.outcomes) == {"mtd", "not_reached", "not_determined", "none"}
    assert math.fsum(oc.outcomes.values()) == pytest.approx(1.0)
    assert oc.outcomes["mtd"] == pytest.approx(sum(oc.selection))
    # R's default stops on 3 patients below a toxic dose, which the MTD rule does not call an MTD:
    assert oc.outcomes["not_determined"] > 0.3


def test_the_report_is_plain_data_and_text():
    oc = simulate_operating_characteristics(make_design("3+3", num_doses=3), [0.05, 0.15, 0.30], trials=50, seed=1)
    body = oc.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert [row["dose"] for row in body["doses"]] == [1, 2, 3]
    assert {"selection", "mean_treated", "mean_dlts", "selection_se", "recommended_at_stop"} <= set(body["doses"][0])
    assert body["prob_not_reached"] == oc.prob_not_reached
    assert "MTD not reached" in oc.render()


@pytest.mark.parametrize(
    ("design", "rates", "kwargs", "message"),
    [
        (make_design("3+3", num_doses=3), [0.1, 0.2], {}, "2 true rates"),
        (make_design("3+3", num_doses=2), [0.1, 1.2], {}, "between 0 and 1"),
        (make_design("3+3", num_doses=2), [0.1, float("nan")], {}, "not a number"),
        (make_design("3+3", num_doses=2), [0.1, 0.2], {"cohort_size": 4}, "cohorts of 3"),
        (make_design("boin", num_doses=2), [0.1, 0.2], {}, "max_cohorts"),
        (make_design("boin", num_doses=2), [0.1, 0.2], {"max_cohorts": 0}, "max_cohorts"),
        (make_design("3+3", num_doses=2), [0.1, 0.2], {"trials": 0}, "trials"),
        (make_design("3+3", num_doses=2), [0.1, 0.2], {"seed": "1"}, "seed"),
    ],
)
def test_bad_input_is_refused_with_a_plain_message(design, rates, kwargs, message):
    arguments = {"trials": 10, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_operating_characteristics(design, rates, **arguments)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def _simulate_command(*args: str) -> str:
    out = StringIO()
    call_command("simulate_design", *args, stdout=out)
    return out.getvalue()


def test_the_command_is_reproducible_for_a_seed_and_reports_per_dose():
    args = ("--design", "3+3", "--variant", "confirm_on_six", "--true-rates", "0.05,0.15,0.3", "--trials", "200",
            "--seed", "1")  # fmt: skip
    first, again = _simulate_command(*args), _simulate_command(*args)
    assert first == again
    body = json.loads(first)
    assert [row["true_rate"] for row in body["doses"]] == [0.05, 0.15, 0.3]
    assert (body["trials"], body["seed"], body["variant"]) == (200, 1, "confirm_on_six")


def test_the_command_runs_boin_with_six_cohorts_by_default_and_can_enumerate_exactly():
    body = json.loads(_simulate_command("--design", "boin", "--true-rates", "0.05,0.15,0.3", "--exact"))
    assert (body["method"], body["max_cohorts"], body["mean_sample_size"]) == (
        "exact",
        6,
        pytest.approx(18.0, abs=0.01),
    )
    assert "selected as MTD (%)" in _simulate_command(
        "--design", "boin", "--true-rates", "0.05,0.15,0.3", "--trials", "50", "--format", "table"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--design", "3+3", "--true-rates", "0.05,x"], "value 2 ('x') is not a number"),
        (["--design", "boin", "--true-rates", "0.05,1.5"], "between 0 and 1"),
    ],
)
def test_the_command_exits_with_code_2_and_a_clear_message_on_bad_input(args, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "simulate_design", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "DEBUG": "true"},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr
