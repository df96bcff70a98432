"""Dose-transition pathways (safety/dosefinding/pathways.py), as R escalation::get_dose_paths.

The reference tree is the one printed in escalation's vignette "Working with dose-paths"
(vignettes/A600-DosePaths.Rmd): ``get_three_plus_three(num_doses = 5, allow_deescalate = TRUE) %>%
get_dose_paths(cohort_sizes = c(3, 3))``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from safety import rules
from safety.dosefinding import cohort_outcomes, dose_paths, flatten_paths, make_design, render_paths

ROOT = Path(__file__).resolve().parents[2]

# escalation's vignette, with R's "NA" (no dose; the design stops) written as "stop (no dose)".
R_VIGNETTE_TREE = """\
Give dose 1:
  NNN -> 2
    NNN -> 3
    NNT -> 2
    NTT -> 1
    TTT -> 1
  NNT -> 1
    NNN -> 2
    NNT -> stop (no dose)
    NTT -> stop (no dose)
    TTT -> stop (no dose)
  NTT -> stop (no dose)
  TTT -> stop (no dose)
"""


def test_two_cohorts_of_the_deescalating_3_plus_3_from_the_start_give_the_tree_in_escalations_vignette():
    tree = dose_paths(make_design("3+3", num_doses=5, variant="allow_deescalate"), "", cohorts=2)
    assert render_paths(tree) == "After no patients yet:\n" + R_VIGNETTE_TREE


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        # The subtree under "NNN" in the vignette: 1NNN, one cohort ahead.
        ("allow_deescalate", [("NNN", 3, True), ("NNT", 2, True), ("NTT", 1, True), ("TTT", 1, True)]),
        ("confirm_on_six", [("NNN", 3, True), ("NNT", 2, True), ("NTT", 1, True), ("TTT", 1, True)]),
        # R's default: 2 or more DLTs at dose 2 stop on dose 1 (its 3 patients are not expanded).
        ("escalation_default", [("NNN", 3, True), ("NNT", 2, True), ("NTT", 1, False), ("TTT", 1, False)]),
    ],
)
def test_one_cohort_ahead_of_1nnn_each_dlt_count_leads_where_the_variant_says(variant, expected):
    tree = dose_paths(make_design("3+3", num_doses=5, variant=variant), "1NNN", cohorts=1)
    assert (tree.recommended_dose, tree.continue_) == (2, True)
    assert [(c.outcomes, c.recommended_dose, c.continue_) for c in tree.children] == expected
    assert all(c.dose == 2 and c.path == f"1NNN 2{c.outcomes}" for c in tree.children)


@pytest.mark.parametrize(
    ("size", "outcomes"),
    [(1, ["N", "T"]), (2, ["NN", "NT", "TT"]), (3, ["NNN", "NNT", "NTT", "TTT"])],
)
def test_a_cohort_has_one_outcome_per_number_of_dlts_in_r_order(size, outcomes):
    assert cohort_outcomes(size) == outcomes


def test_a_branch_ends_where_the_design_stops():
    tree = dose_paths(make_design("3+3", num_doses=3), "1NNN", cohorts=2)
    stopped = [node for node in tree.walk() if not node.continue_]
    assert stopped and all(node.children == () for node in stopped)
    assert [c.outcomes for c in tree.children[0].children] == ["NNN", "NNT", "NTT", "TTT"]


def test_nothing_is_enumerated_when_the_design_has_already_stopped():
    tree = dose_paths(make_design("3+3", num_doses=3), "1NTT", cohorts=2)
    assert (tree.recommended_dose, tree.continue_, tree.children) == (None, False, ())
    assert render_paths(tree) == "After 1NTT: stop (no dose); nothing to enumerate.\n"


@pytest.mark.parametrize(
    ("design", "outcomes"),
    [
        (make_design("boin", num_doses=4, target=0.3), "1NNN"),
        (make_design("boin", num_doses=4, target=0.25), ""),
        (make_design("3+3", num_doses=4, variant="confirm_on_six"), "1NNN 2NNT"),
    ],
)
def test_every_node_carries_the_designs_own_answer_on_its_whole_history(design, outcomes):
    tree = dose_paths(design, outcomes, cohorts=2)
    for node in tree.walk():
        advice = design.recommend(node.path)
        assert (node.recommended_dose, node.continue_, node.reason) == (
            advice.recommended_dose, advice.continue_, advice.reason,
        )  # fmt: skip


def test_boin_never_stops_in_two_cohorts_from_1nnn_so_the_tree_is_full():
    tree = dose_paths(make_design("boin", num_doses=3), "1NNN", cohorts=2)
    assert len(list(tree.walk())) == 1 + 4 + 16


def test_cohort_sizes_may_differ_as_in_r():
    tree = dose_paths(make_design("boin", num_doses=6, target=0.33), "1NNN", cohort_sizes=[3, 4, 2])
    depths = [node.depth for node in tree.walk()]
    assert depths.count(1) == 4 and depths.count(2) == 4 * 5 and depths.count(3) == 4 * 5 * 3
    assert {len(node.outcomes) for node in tree.walk() if node.depth == 2} == {4}


def test_the_flat_table_lists_each_node_with_its_parent_depth_first():
    tree = dose_paths(make_design("3+3", num_doses=3), "", cohorts=2)
    rows = flatten_paths(tree)
    assert rows[0] == {"node": 1, "parent": None, "depth": 0, "outcomes": "", "dose": None, "path": "",
                       "recommended_dose": 1, "continue": True}  # fmt: skip
    assert rows[1]["path"] == "1NNN" and rows[1]["parent"] == 1 and rows[1]["recommended_dose"] == 2
    assert rows[2]["path"] == "1NNN 2NNN" and rows[2]["parent"] == rows[1]["node"]
    assert len({row["node"] for row in rows}) == len(rows)


def test_the_tree_is_nested_plain_data():
    body = dose_paths(make_design("3+3", num_doses=3), "1NNN", cohorts=1).to_dict()
    assert json.loads(json.dumps(body)) == body
    assert set(body) == {"outcomes", "dose", "path", "recommended_dose", "continue", "reason", "children"}
    assert [child["outcomes"] for child in body["children"]] == ["NNN", "NNT", "NTT", "TTT"]


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "error", "message"),
    [
        ("1NXN", {}, rules.OutcomeNotationError, "'X'"),
        ("4NNN", {}, rules.OutcomeNotationError, "above the highest dose"),
        ("1NNNN", {}, rules.InconsistentThreePlusThreeError, "Inconsistent 3\\+3"),
        ("1NNN", {"cohorts": 0}, ValueError, "cohorts"),
        ("1NNN", {"cohort_size": 0}, ValueError, "cohort_size"),
        ("1NNN", {"cohorts": 8, "cohort_size": 6}, ValueError, "at most"),
    ],
)
def test_bad_input_is_refused_with_the_rules_own_errors(outcomes, kwargs, error, message):
    with pytest.raises(error, match=message):
        dose_paths(make_design("3+3", num_doses=3), outcomes, **kwargs)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def _dose_paths_command(*args: str) -> str:
    out = StringIO()
    call_command("dose_paths", *args, stdout=out)
    return out.getvalue()


def test_the_command_gives_the_tree_and_the_flat_rows_as_json():
    body = json.loads(_dose_paths_command("--design", "3+3", "--outcomes", "1NNN", "--doses", "3", "--cohorts", "1"))
    assert [(c["outcomes"], c["recommended_dose"], c["continue"]) for c in body["tree"]["children"]] == [
        ("NNN", 3, True), ("NNT", 2, True), ("NTT", 1, False), ("TTT", 1, False),
    ]  # fmt: skip
    assert len(body["rows"]) == 5 and body["variant"] == "escalation_default"


def test_the_command_prints_the_r_layout_with_format_table():
    text = _dose_paths_command("--design", "3+3", "--variant", "allow_deescalate", "--doses", "5", "--format", "table")
    assert text == "After no patients yet:\n" + R_VIGNETTE_TREE


def test_the_command_exits_with_code_2_on_bad_notation():
    result = subprocess.run(
        [sys.executable, "manage.py", "dose_paths", "--design", "3+3", "--outcomes", "1NXN"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "DEBUG": "true"},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert "'X'" in result.stderr
