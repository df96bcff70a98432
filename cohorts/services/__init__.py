"""Every write to participants, screening, consent, cohorts, enrollment, infusions, visits, deviations, follow-up.

One module per concept; every public name is re-exported here, so callers keep writing
``from cohorts import services; services.enroll_participant(...)``.

Each function runs in one transaction, validates first and acts second, and writes its audit rows
(simple-history, with the acting user and the reason) in the same transaction.
"""

from cohorts.services.consent import consent_document_save, consent_record
from cohorts.services.data_lock import CORRECT_LOCKED_DATA, CORRECTION_PREFIX, data_lock_check
from cohorts.services.deviations import (
    deviation_record,
    deviation_update,
)
from cohorts.services.enrollment import enroll_participant
from cohorts.services.follow_up import (
    SweepReport,
    follow_up_progress_apply,
    follow_up_sweep,
    lost_to_follow_up_confirm,
    lost_to_follow_up_dismiss,
)
from cohorts.services.infusion_finish import (
    infusion_complete,
    infusion_stop_early,
)
from cohorts.services.infusions import (
    VITAL_FIELDS,
    drip_rate_record,
    infusion_interrupt,
    infusion_resume,
    infusion_start,
    vital_signs_record,
)
from cohorts.services.lifecycle import (
    TRANSITIONS,
    Activity,
    Transition,
    cohort_open,
    cohort_open_first,
    cohort_open_next,
    cohort_refusal,
    cohort_transition,
    transition_allowed,
)
from cohorts.services.participant_lifecycle import (
    PARTICIPANT_TRANSITIONS,
    ParticipantTransition,
    participant_transition,
    participant_transition_allowed,
)
from cohorts.services.participants import (
    PARTICIPANT_EDITABLE,
    participant_mark_replaced,
    participant_register,
    participant_update,
    participant_withdraw,
)
from cohorts.services.reminding import (
    DAY_REMINDER_HOUR,
    at_site_hour,
    sentinel_subject,
    visit_subject,
)
from cohorts.services.screening import (
    SCREENING_FIELDS,
    SCREENING_STATUSES,
    eligibility_evaluate,
    gilbert_diagnosis_record,
    judgment_confirm,
    judgments_confirm,
    screening_record_save,
)
from cohorts.services.visits import (
    visit_complete,
    visit_miss,
)

__all__ = [
    "CORRECTION_PREFIX",
    "CORRECT_LOCKED_DATA",
    "DAY_REMINDER_HOUR",
    "PARTICIPANT_EDITABLE",
    "PARTICIPANT_TRANSITIONS",
    "SCREENING_FIELDS",
    "SCREENING_STATUSES",
    "TRANSITIONS",
    "VITAL_FIELDS",
    "Activity",
    "ParticipantTransition",
    "SweepReport",
    "Transition",
    "at_site_hour",
    "cohort_open",
    "cohort_open_first",
    "cohort_open_next",
    "cohort_refusal",
    "cohort_transition",
    "consent_document_save",
    "consent_record",
    "data_lock_check",
    "deviation_record",
    "deviation_update",
    "drip_rate_record",
    "eligibility_evaluate",
    "enroll_participant",
    "follow_up_progress_apply",
    "follow_up_sweep",
    "gilbert_diagnosis_record",
    "infusion_complete",
    "infusion_interrupt",
    "infusion_resume",
    "infusion_start",
    "infusion_stop_early",
    "judgment_confirm",
    "judgments_confirm",
    "lost_to_follow_up_confirm",
    "lost_to_follow_up_dismiss",
    "participant_mark_replaced",
    "participant_register",
    "participant_transition",
    "participant_transition_allowed",
    "participant_update",
    "participant_withdraw",
    "screening_record_save",
    "sentinel_subject",
    "transition_allowed",
    "visit_complete",
    "visit_miss",
    "visit_subject",
    "vital_signs_record",
]
