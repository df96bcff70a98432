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
from safety.dosefinding.designs import THREE_PLUS_THREE_VARIANTS, Design, make_design

__all__ = [
    "THREE_PLUS_THREE_CONTEXTS",
    "THREE_PLUS_THREE_VARIANTS",
    "DecisionRow",
    "DecisionTable",
    "Design",
    "decision_table",
    "make_design",
    "render_decision_table",
]
