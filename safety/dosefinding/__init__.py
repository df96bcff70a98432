"""Dose-finding tools over the pure escalation rules (issue 15): decision tables, dose-transition
pathways, operating characteristics by simulation (and exact enumeration), and TITE-BOIN.

Pure: stdlib only, no Django import. Every escalation decision comes from :mod:`safety.rules`.
See ``docs/dose-finding.md`` for each function and its source.
"""

from safety.dosefinding.decision_table import (
    THREE_PLUS_THREE_CONTEXTS,
    DecisionRow,
    DecisionTable,
    decision_table,
    render_decision_table,
)
from safety.dosefinding.designs import THREE_PLUS_THREE_VARIANTS, Design, check_probabilities, make_design
from safety.dosefinding.pathways import (
    MAX_PATH_NODES,
    PathNode,
    cohort_outcomes,
    dose_paths,
    flatten_paths,
    render_paths,
)
from safety.dosefinding.report import render_operating_characteristics
from safety.dosefinding.scenarios import preset_scenarios
from safety.dosefinding.simulation import (
    MTD_STATUSES,
    OperatingCharacteristics,
    exact_operating_characteristics,
    simulate_operating_characteristics,
)
from safety.dosefinding.tite_boin import (
    TiteBoinEstimate,
    TiteBoinRecommendation,
    TiteBoinRow,
    TiteParticipant,
    tite_boin,
    tite_boin_decision_table,
    tite_boin_estimate,
)

__all__ = [
    "MAX_PATH_NODES",
    "MTD_STATUSES",
    "THREE_PLUS_THREE_CONTEXTS",
    "THREE_PLUS_THREE_VARIANTS",
    "DecisionRow",
    "DecisionTable",
    "Design",
    "OperatingCharacteristics",
    "PathNode",
    "TiteBoinEstimate",
    "TiteBoinRecommendation",
    "TiteBoinRow",
    "TiteParticipant",
    "check_probabilities",
    "cohort_outcomes",
    "decision_table",
    "dose_paths",
    "exact_operating_characteristics",
    "flatten_paths",
    "make_design",
    "preset_scenarios",
    "render_decision_table",
    "render_operating_characteristics",
    "render_paths",
    "simulate_operating_characteristics",
    "tite_boin",
    "tite_boin_decision_table",
    "tite_boin_estimate",
]
