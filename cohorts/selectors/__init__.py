"""Reads that the admin, the API and the services share, one module per concept, re-exported here."""

from cohorts.selectors.cohorts import (
    cohort_all_infused,
    cohort_list,
    cohort_next_step,
    dlt_windows_complete,
)
from cohorts.selectors.data_lock import data_locked_cohort
from cohorts.selectors.eligibility import (
    EligibilitySummary,
    consent_criteria,
    consent_document_in_force,
    criteria_specs,
    current_consent,
    eligibility_summary,
    gilbert_syndrome,
    screening_facts,
)
from cohorts.selectors.follow_up import (
    deviation_list,
    followup_visit_list,
    lost_to_follow_up_list,
)
from cohorts.selectors.infusions import (
    NOT_INFUSABLE_STATUSES,
    InfusionHold,
    InfusionReadiness,
    cohort_infusion_readiness,
    infusion_hold,
    infusion_list,
)
from cohorts.selectors.participants import (
    TimelineEntry,
    participant_list,
    participant_timeline,
)
from cohorts.selectors.sites import (
    format_site_time,
    infusion_day,
    site_today,
    site_zone,
)

__all__ = [
    "NOT_INFUSABLE_STATUSES",
    "EligibilitySummary",
    "InfusionHold",
    "InfusionReadiness",
    "TimelineEntry",
    "cohort_all_infused",
    "cohort_infusion_readiness",
    "cohort_list",
    "cohort_next_step",
    "consent_criteria",
    "consent_document_in_force",
    "criteria_specs",
    "current_consent",
    "data_locked_cohort",
    "deviation_list",
    "dlt_windows_complete",
    "eligibility_summary",
    "followup_visit_list",
    "format_site_time",
    "gilbert_syndrome",
    "infusion_day",
    "infusion_hold",
    "infusion_list",
    "lost_to_follow_up_list",
    "participant_list",
    "participant_timeline",
    "screening_facts",
    "site_today",
    "site_zone",
]
