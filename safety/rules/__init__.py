"""Dose-escalation designs for Phase 1 trials as pure functions.

The package: ``notation`` (the outcome notation, tallies, ``Recommendation``), ``three_plus_three``,
``boin``, ``mtd`` (each design's MTD selection) and ``designs`` (a design by name). Every name of
``__all__`` is importable from ``safety.rules``.

This package has no Django dependency (stdlib only) so that a statistician can
check its answers against the R reference implementations side by side:

* the outcome notation and the 3+3 design follow the R package ``escalation``
  by Kristian Brock (``parse_phase1_outcomes``, ``three_plus_three`` and
  ``get_three_plus_three``);
* BOIN follows the R package ``BOIN`` by Yuan et al. (``get.boundary``,
  ``select.mtd``, ``get.oc``) and ``escalation::get_boin``.

Every place where we copy a reference choice has a comment that quotes the R
code it mirrors, so a reviewer can find it in the reference source.

Outcome notation
----------------
A trial history is written as cohorts separated by whitespace. Each cohort is
a dose level (a positive whole number, possibly with several digits) followed
by one letter per patient: ``N`` for no dose-limiting toxicity (DLT) and ``T``
for a DLT. ``"1NNN 2NTN"`` means three patients at dose 1 with no DLT, then
three patients at dose 2 of whom one had a DLT.

Quick use::

    >>> advice = three_plus_three("1NNN", num_doses=3)
    >>> advice.recommended_dose, advice.continue_
    (2, True)
    >>> advice.reason
    '0 of 3 patients at dose 1 had a DLT: escalate to dose 2.'
    >>> boin_boundaries(0.3)
    (0.23649068523646805, 0.35851946464092954)
"""

from safety.rules.boin import (
    BoinBoundary,
    beta_cdf,
    boin,
    boin_boundaries,
    boin_decision_table,
    boin_eliminated_doses,
    prob_tox_exceeds,
)
from safety.rules.designs import DESIGNS, compare, recommend
from safety.rules.mtd import MtdSelection, boin_mtd_selection, boin_select_mtd, select_mtd, three_plus_three_select_mtd
from safety.rules.notation import (
    CohortOutcome,
    DoseTally,
    OutcomeNotationError,
    Outcomes,
    Recommendation,
    format_outcomes,
    parse_outcomes,
    tally,
)
from safety.rules.three_plus_three import InconsistentThreePlusThreeError, check_three_plus_three_path, three_plus_three

__all__ = [
    "DESIGNS",
    "BoinBoundary",
    "CohortOutcome",
    "DoseTally",
    "InconsistentThreePlusThreeError",
    "MtdSelection",
    "OutcomeNotationError",
    "Outcomes",
    "Recommendation",
    "beta_cdf",
    "boin",
    "boin_boundaries",
    "boin_decision_table",
    "boin_eliminated_doses",
    "boin_mtd_selection",
    "boin_select_mtd",
    "check_three_plus_three_path",
    "compare",
    "format_outcomes",
    "parse_outcomes",
    "prob_tox_exceeds",
    "recommend",
    "select_mtd",
    "tally",
    "three_plus_three",
    "three_plus_three_select_mtd",
]
