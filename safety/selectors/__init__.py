"""Reads the admin, the API and the services need from the safety data, one module per concept, re-exported here."""

from safety.selectors.adverse_events import (
    OPEN_DLT_STATUSES,
    adverse_event_list,
    confirmed_dlts_at_dose,
    overdue_clocks,
    participant_ae_timeline,
    participant_has_dlt_candidate,
)
from safety.selectors.dose_finding import (
    PATHWAY_COHORTS,
    TITE_KEY,
    answer_label,
    boin_grid,
    decision_tables,
    dose_finding_display,
    pathway_rows,
    protocol_tables_display,
    three_plus_three_context,
    three_plus_three_grid,
    trial_design,
)
from safety.selectors.reviews import (
    canonical_json,
    full_dose_given,
    participant_evaluability,
    review_snapshot,
    sha256_hex,
    trial_dose_finding,
    unrecorded_dlt_window_visits,
)
from safety.selectors.summary import trial_summary

__all__ = [
    "OPEN_DLT_STATUSES",
    "PATHWAY_COHORTS",
    "TITE_KEY",
    "adverse_event_list",
    "answer_label",
    "boin_grid",
    "canonical_json",
    "confirmed_dlts_at_dose",
    "decision_tables",
    "dose_finding_display",
    "full_dose_given",
    "overdue_clocks",
    "participant_ae_timeline",
    "participant_evaluability",
    "participant_has_dlt_candidate",
    "pathway_rows",
    "protocol_tables_display",
    "review_snapshot",
    "sha256_hex",
    "three_plus_three_context",
    "three_plus_three_grid",
    "trial_design",
    "trial_dose_finding",
    "trial_summary",
    "unrecorded_dlt_window_visits",
]
