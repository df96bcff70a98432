"""Participants, screening, consent, cohorts and enrollment, infusions, follow-up visits and deviations.

States change only in ``cohorts.services``. The database holds the invariants a race could break:
one active cohort per trial, one enrollment per participant, slot numbers unique per cohort and
within 1..capacity (the capacity is copied onto the enrollment so a CHECK can hold it), one
sentinel per cohort.

One module per aggregate; every model and helper is importable from ``cohorts.models``.
"""

from cohorts.models.cohort import ACTIVE_COHORT_STATES, Cohort, Enrollment
from cohorts.models.consent import ConsentDocument, ConsentRecord
from cohorts.models.follow_up import FollowUpVisit, LostToFollowUp, ProtocolDeviation
from cohorts.models.infusions import (
    AVERAGE_RATE_QUANTUM,
    IMPLAUSIBLE_RATE_FACTOR,
    ML_PER_HOUR_QUANTUM,
    VITAL_RANGES,
    DripRateReading,
    Infusion,
    InfusionInterruption,
    VitalSigns,
    average_drip_rate,
    dose_within_tolerance,
    ml_per_hour,
)
from cohorts.models.participants import (
    CriterionAssessment,
    Fracture,
    GilbertSyndromeDiagnosis,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)

__all__ = [
    "ACTIVE_COHORT_STATES",
    "AVERAGE_RATE_QUANTUM",
    "IMPLAUSIBLE_RATE_FACTOR",
    "ML_PER_HOUR_QUANTUM",
    "VITAL_RANGES",
    "Cohort",
    "ConsentDocument",
    "ConsentRecord",
    "CriterionAssessment",
    "DripRateReading",
    "Enrollment",
    "FollowUpVisit",
    "Fracture",
    "GilbertSyndromeDiagnosis",
    "Infusion",
    "InfusionInterruption",
    "JudgmentConfirmation",
    "LostToFollowUp",
    "Participant",
    "ProtocolDeviation",
    "ScreeningRecord",
    "VitalSigns",
    "average_drip_rate",
    "dose_within_tolerance",
    "ml_per_hour",
]
