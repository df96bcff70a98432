"""Decision tables (safety/dosefinding/decision_table.py).

Where the expected values come from:

* BOIN, target 0.30: the table ``BOIN::get.boundary`` prints, as published in the BOIN authors' protocol
  template ("Table 1. Dose escalation/de-escalation rule for the BOIN design", target 0.3, n = 3..30) and
  quoted in the issue: n=3 -> (0, 2, 3); n=6 -> (1, 3, 4); n=9 -> (2, 4, 5); n=12 -> (2, 5, 7).
* BOIN, target 0.25: lambda_e = 0.197 and lambda_d = 0.298 as BOIN's publications tabulate them; the
  per-n boundaries are get.boundary's formulas (floor(lambda_e n), ceiling(lambda_d n), elimination at the
  smallest y with Pr(p > 0.25 | y of n) > 0.95 for n >= 3, de-escalation capped at elimination), recomputed
  here with exact rational arithmetic, independently of safety.rules.
* 3+3: R escalation's rules (``three_plus_three.R``) as safety.rules mirrors them, and the protocol's
  confirm_on_six variant (docs/protocol.md, "The 3+3 variant").
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from safety.dosefinding import decision_table, render_decision_table

# get.boundary for target 0.3 (BOIN protocol template, Table 1), n = 3, 6, ..., 30:
BOIN_030_PUBLISHED = {
    3: (0, 2, 3),
    6: (1, 3, 4),
    9: (2, 4, 5),
    12: (2, 5, 7),
    15: (3, 6, 8),
    18: (4, 7, 9),
    21: (4, 8, 10),
    24: (5, 9, 11),
    27: (6, 10, 12),
    30: (7, 11, 14),
}

# get.boundary's full_boundary_tab for target 0.25, n = 1..18 ((escalate <=, de-escalate >=, eliminate >=)).
BOIN_025 = {
    1: (0, 1, None),
    2: (0, 1, None),
    3: (0, 1, 3),
    4: (0, 2, 3),
    5: (0, 2, 3),
    6: (1, 2, 4),
    7: (1, 3, 4),
    8: (1, 3, 4),
    9: (1, 3, 5),
    10: (1, 3, 5),
    11: (2, 4, 6),
    12: (2, 4, 6),
    13: (2, 4, 6),
    14: (2, 5, 7),
    15: (2, 5, 7),
    16: (3, 5, 7),
    17: (3, 6, 8),
    18: (3, 6, 8),
}


def _boundaries(table):
    return {b.n: (b.escalate_at_most, b.deescalate_at_least, b.eliminate_at_least) for b in table.boundaries}


@pytest.mark.parametrize(("n", "expected"), sorted(BOIN_030_PUBLISHED.items()))
def test_boin_table_for_target_030_matches_the_published_get_boundary_table(n, expected):
    table = decision_table("boin", target=0.3, max_n=30)
    assert _boundaries(table)[n] == expected


@pytest.mark.parametrize(("n", "expected"), sorted(BOIN_025.items()))
def test_boin_table_for_target_025_matches_get_boundary_at_every_n_up_to_18(n, expected):
    assert _boundaries(decision_table("boin", target=0.25, max_n=18))[n] == expected


def test_boin_boundaries_for_target_025_are_the_published_0197_and_0298():
    table = decision_table("boin", target=0.25)
    assert (round(table.lambda_e, 3), round(table.lambda_d, 3)) == (0.197, 0.298)


def _exact_posterior_exceeds(target: Fraction, n: int, y: int) -> Fraction:
    """1 - pbeta(target, y + 1, n - y + 1) = P(Binomial(n + 1, target) <= y), exactly."""
    return sum((math.comb(n + 1, k) * target**k * (1 - target) ** (n + 1 - k) for k in range(y + 1)), Fraction(0))


@pytest.mark.parametrize("n", range(1, 19))
def test_boin_table_for_target_025_agrees_with_an_independent_exact_computation(n):
    target, lambda_e, lambda_d = Fraction(1, 4), 0.19680087055548712, 0.2983921523754597
    eliminate = None
    if n >= 3:
        eliminate = next(
            (y for y in range(1, n + 1) if _exact_posterior_exceeds(target, n, y) > Fraction(95, 100)), None
        )
    deescalate = math.ceil(lambda_d * n)
    if eliminate is not None:
        deescalate = min(deescalate, eliminate)
    assert BOIN_025[n] == (math.floor(lambda_e * n), deescalate, eliminate)


@pytest.mark.parametrize("target", [0.25, 0.30])
def test_every_boin_cell_follows_the_boundaries_escalate_stay_deescalate_eliminate(target):
    table = decision_table("boin", target=target, max_n=18)
    bounds = _boundaries(table)
    assert {(row.n, row.dlts) for row in table.rows} == {(n, y) for n in range(1, 19) for y in range(n + 1)}
    for row in table.rows:
        escalate, deescalate, eliminate = bounds[row.n]
        if eliminate is not None and row.dlts >= eliminate:
            assert row.action == "eliminate"
        elif row.dlts <= escalate:
            assert row.action == "escalate"
        elif row.dlts >= deescalate:
            assert row.action == "de-escalate"
        else:
            assert row.action == "stay"


@pytest.mark.parametrize(
    ("n", "dlts", "action"),
    [(3, 0, "escalate"), (3, 1, "stay"), (3, 2, "de-escalate"), (3, 3, "eliminate"), (6, 1, "escalate"),
     (6, 2, "stay"), (6, 3, "de-escalate"), (6, 4, "eliminate"), (12, 2, "escalate"), (12, 3, "stay"),
     (12, 4, "stay"), (12, 5, "de-escalate"), (12, 6, "de-escalate"), (12, 7, "eliminate"), (1, 1, "de-escalate"),
     (2, 2, "de-escalate")],
)  # fmt: skip
def test_boin_cells_on_both_sides_of_each_boundary_for_target_030(n, dlts, action):
    assert decision_table("boin", target=0.3).row(n, dlts).action == action


def test_boin_renders_as_get_boundary_prints_it_for_cohorts_of_three():
    text = render_decision_table(decision_table("boin", target=0.3, max_n=18, cohort_size=3))
    assert "Number of patients treated   3   6   9  12  15  18" in text
    assert "Escalate if # of DLT <=      0   1   2   2   3   4" in text
    assert "De-escalate if # of DLT >=   2   3   4   5   6   7" in text
    assert "Eliminate if # of DLT >=     3   4   5   7   8   9" in text


def test_boin_rendered_for_cohorts_of_one_shows_na_where_elimination_is_impossible():
    text = decision_table("boin", target=0.3, max_n=4, cohort_size=1).render()
    assert "Eliminate if # of DLT >=    NA  NA   3   3" in text


# ---------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "context", "n", "dlts", "expected"),
    [
        # R escalation's default: 0/3 escalates, 1/3 expands, 2+ stops on the dose below (even on 3 there).
        ("escalation_default", "generic", 3, 0, ("escalate", 1, True)),
        ("escalation_default", "generic", 3, 1, ("stay", 0, True)),
        ("escalation_default", "generic", 3, 2, ("stop", -1, False)),
        ("escalation_default", "generic", 6, 1, ("escalate", 1, True)),
        ("escalation_default", "generic", 6, 2, ("stop", -1, False)),
        ("escalation_default", "lowest", 3, 2, ("stop", None, False)),
        ("escalation_default", "lowest", 6, 2, ("stop", None, False)),
        ("escalation_default", "highest", 3, 0, ("stop", 0, False)),
        ("escalation_default", "highest", 6, 1, ("stop", 0, False)),
        ("escalation_default", "generic", 2, 2, ("stay", 0, True)),
        # confirm_on_six (NCT06949137): de-escalate to treat 6 below; 0/3 at the top dose expands to 6.
        ("confirm_on_six", "generic", 3, 0, ("escalate", 1, True)),
        ("confirm_on_six", "generic", 3, 2, ("de-escalate", -1, True)),
        ("confirm_on_six", "generic", 6, 2, ("de-escalate", -1, True)),
        ("confirm_on_six", "lowest", 3, 2, ("stop", None, False)),
        ("confirm_on_six", "highest", 3, 0, ("stay", 0, True)),
        ("confirm_on_six", "highest", 6, 0, ("stop", 0, False)),
        ("confirm_on_six", "highest", 6, 1, ("stop", 0, False)),
        ("confirm_on_six", "highest", 6, 2, ("de-escalate", -1, True)),
    ],
)
def test_three_plus_three_cells_in_each_variant_and_context(variant, context, n, dlts, expected):
    row = decision_table("3+3", variant=variant, context=context).row(n, dlts)
    assert (row.action, row.next_dose, row.continue_) == expected


@pytest.mark.parametrize("variant", ["escalation_default", "confirm_on_six"])
def test_three_plus_three_table_covers_every_count_up_to_six_and_stops_there(variant):
    table = decision_table("3+3", variant=variant, max_n=18)
    assert table.max_n == 6
    assert {(row.n, row.dlts) for row in table.rows} == {(n, y) for n in range(1, 7) for y in range(n + 1)}
    assert any("never treats more than 6" in note for note in table.notes)


@pytest.mark.parametrize(
    ("variant", "context", "cell", "reachable"),
    [
        ("escalation_default", "generic", (4, 0), False),  # 0 of 3 escalates, so 4 treated means a DLT in 3
        ("escalation_default", "generic", (4, 1), True),
        ("escalation_default", "generic", (6, 3), True),
        ("escalation_default", "generic", (4, 3), False),  # 2 of 3 stops before a fourth patient
        ("escalation_default", "highest", (4, 0), False),  # R stops on 0 of 3 at the top dose
        ("confirm_on_six", "highest", (4, 0), True),  # the variant expands 0 of 3 at the top dose
        ("confirm_on_six", "highest", (6, 0), True),
    ],
)
def test_three_plus_three_marks_the_cells_the_design_cannot_reach(variant, context, cell, reachable):
    assert decision_table("3+3", variant=variant, context=context).row(*cell).reachable is reachable


def test_three_plus_three_renders_one_line_per_cell_with_its_context():
    text = decision_table("3+3", variant="confirm_on_six", context="highest").render()
    assert "3+3 decision table (confirm_on_six), the highest dose" in text
    assert "      3     0  stay         expand to 6 at this dose" in text


@pytest.mark.parametrize("design", ["3+3", "boin"])
def test_a_table_is_plain_data_that_survives_json(design):
    body = decision_table(design).to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["rows"][0] == {
        "n": 1, "dlts": 0, "action": body["rows"][0]["action"], "detail": body["rows"][0]["detail"],
        "next_dose": body["rows"][0]["next_dose"], "continue": True, "reachable": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"design": "crm"}, "unknown design"),
        ({"design": "3+3", "variant": "rolling6"}, "unknown 3\\+3 variant"),
        ({"design": "3+3", "context": "somewhere"}, "unknown 3\\+3 context"),
        ({"design": "boin", "variant": "confirm_on_six"}, "BOIN has no variant"),
        ({"design": "boin", "target": 0.9}, "too high"),
        ({"design": "boin", "max_n": 0}, "max_n"),
        ({"design": "boin", "cutoff_eli": 1.0}, "cutoff_eli"),
    ],
)
def test_bad_parameters_are_refused_with_a_plain_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decision_table(**kwargs)


# ---------------------------------------------------------------------------
# The command and purity
# ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def run_command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def run_manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DEBUG": "true"},
    )  # fmt: skip


def test_the_command_prints_the_boin_table_as_json_by_default():
    body = json.loads(run_command("decision_table", "--design", "boin", "--target", "0.3", "--max-n", "12"))
    columns = [b for b in body["boundaries"] if b["n"] % 3 == 0]
    got = [(b["n"], b["escalate_at_most"], b["deescalate_at_least"], b["eliminate_at_least"]) for b in columns]
    assert got == [(3, 0, 2, 3), (6, 1, 3, 4), (9, 2, 4, 5), (12, 2, 5, 7)]


def test_the_command_prints_a_plain_table_for_the_3_plus_3_variant():
    text = run_command("decision_table", "--design", "3+3", "--variant", "confirm_on_six", "--format", "table")
    assert text.startswith("3+3 decision table (confirm_on_six)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--design", "boin", "--variant", "confirm_on_six"], "BOIN has no variant"),
        (["--design", "3+3", "--variant", "rolling6"], "unknown 3+3 variant"),
    ],
)
def test_the_command_exits_with_code_2_and_a_clear_message_on_bad_input(args, message):
    result = run_manage("decision_table", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr


def test_the_dosefinding_package_imports_no_django():
    code = "import sys, safety.dosefinding; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]")
