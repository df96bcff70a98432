"""Reads the admin, the API and the services need from the safety data, one module per concept, re-exported here."""

from safety.selectors.adverse_events import (
    OPEN_DLT_STATUSES,
    adverse_event_list,
    confirmed_dlts_at_dose,
    overdue_clocks,
    participant_ae_timeline,
    participant_has_dlt_candidate,
)
from safety.selectors.reviews import (
    canonical_json,
    full_dose_given,
    participant_evaluability,
    review_snapshot,
    sha256_hex,
    unrecorded_dlt_window_visits,
)
from safety.selectors.summary import trial_summary

__all__ = [
    "OPEN_DLT_STATUSES",
    "adverse_event_list",
    "canonical_json",
    "confirmed_dlts_at_dose",
    "full_dose_given",
    "overdue_clocks",
    "participant_ae_timeline",
    "participant_evaluability",
    "participant_has_dlt_candidate",
    "review_snapshot",
    "sha256_hex",
    "trial_summary",
    "unrecorded_dlt_window_visits",
]
