"""REST API of the safety app: adverse events and DLT decisions, reporting clocks, safety reviews and their
signatures, the escalation history and the trial summary. ``api/urls.py`` routes them under ``/api/v1/``."""

from safety.api.adverse_events import AdverseEventViewSet
from safety.api.clocks import ReportingClockViewSet
from safety.api.reviews import EscalationHistoryView, SafetyReviewViewSet, TrialSummaryView

__all__ = [
    "AdverseEventViewSet",
    "EscalationHistoryView",
    "ReportingClockViewSet",
    "SafetyReviewViewSet",
    "TrialSummaryView",
]
