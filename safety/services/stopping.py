"""The stopping rules: a related death or too many DLTs pause the active cohort and open a review."""

from cohorts.models import ACTIVE_COHORT_STATES, Cohort
from cohorts.services import Transition, cohort_transition
from safety import dlt
from safety.models import AdverseEvent
from safety.selectors import confirmed_dlts_at_dose
from safety.services.reviews import review_open_unscheduled


def is_related_death(grade: int, relationship: str) -> bool:
    return grade == 5 and dlt.related_at_least(relationship, "possible")


def apply_stopping_rules(
    event: AdverseEvent, *, by, new_related_death: bool = False, new_confirmed_dlt: bool = False
) -> Cohort | None:
    """Pause the trial's active cohort at once when a stopping rule is met (same transaction).

    Fires on the change that meets the rule (this event became a related death, or this DLT was just
    confirmed and the dose's count reached the limit), not on every later save: after the committee
    resumes, an unrelated grade 1 event must not pause the cohort again.
    """
    if not (new_related_death or new_confirmed_dlt):
        return None
    trial = event.participant.trial
    cohort = (
        Cohort.objects.select_for_update(of=("self",))
        .filter(trial=trial, state__in=ACTIVE_COHORT_STATES)
        .select_related("dose_level", "trial")
        .first()
    )
    if cohort is None:
        return None
    enrollment = event.participant.enrollments.select_related("cohort").first()
    dose_cohort = enrollment.cohort if enrollment else cohort
    verdict = dlt.stopping_rule(
        related_deaths=1 if new_related_death else 0,
        confirmed_dlts_at_dose=confirmed_dlts_at_dose(dose_cohort) if new_confirmed_dlt else 0,
        dose_level=dose_cohort.dose_level.level,
        stop_on_related_death=trial.stop_on_related_death,
        dlt_stop_count=trial.dlt_stop_count,
    )
    if not verdict.stop or cohort.state == Cohort.State.PAUSED:
        return None
    cohort_transition(
        cohort=cohort,
        transition=Transition.PAUSE,
        by=by,
        reason=f"Stopping rule: {verdict.reason} Enrollment and infusion paused.",
    )
    review_open_unscheduled(cohort=cohort, reason=f"Stopping rule met: {verdict.reason}", by=by)
    return cohort
