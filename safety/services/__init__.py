"""Every write to adverse events, DLT decisions, reporting clocks, the safety stop, safety reviews and their
signatures, and the escalation gate. One module per concept; every public name is re-exported here."""

from safety.services.adverse_events import (
    AE_FIELDS,
    SAE_CRITERIA,
    adverse_event_record,
    adverse_event_update,
    dlt_decide,
)
from safety.services.clocks import clock_complete
from safety.services.gate import DECISIONS_NEEDING_VISITS
from safety.services.reviews import (
    protocol_recommendation,
    review_mtd_selection,
    review_open_by_chair,
    review_open_scheduled,
    review_open_unscheduled,
    review_propose,
    reviews_open_due,
)
from safety.services.signatures import (
    SIGNING_LOCKOUT_FAILURES,
    SIGNING_LOCKOUT_MINUTES,
    review_sign,
)
from safety.services.verification import PROBLEM_CODES, signature_report, verify_signatures
from safety.signing import digest_matches

__all__ = [
    "AE_FIELDS",
    "DECISIONS_NEEDING_VISITS",
    "PROBLEM_CODES",
    "SAE_CRITERIA",
    "SIGNING_LOCKOUT_FAILURES",
    "SIGNING_LOCKOUT_MINUTES",
    "adverse_event_record",
    "adverse_event_update",
    "clock_complete",
    "digest_matches",
    "dlt_decide",
    "protocol_recommendation",
    "review_mtd_selection",
    "review_open_by_chair",
    "review_open_scheduled",
    "review_open_unscheduled",
    "review_propose",
    "review_sign",
    "reviews_open_due",
    "signature_report",
    "verify_signatures",
]
