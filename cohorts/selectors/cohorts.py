"""Cohorts: the list with enrolled counts, the next step, and whether every participant was infused or
has completed the DLT window."""

from datetime import date

from django.db.models import Count, QuerySet

from cohorts.models import (
    Cohort,
    Infusion,
)
from cohorts.selectors.sites import site_today
from trial.models import Trial


def cohort_next_step(cohort: Cohort, enrolled: int) -> str:
    match cohort.state:
        case Cohort.State.PLANNED:
            return "Waiting to be opened"
        case Cohort.State.OPEN:
            return f"Enroll: {cohort.capacity - enrolled} of {cohort.capacity} places left"
        case Cohort.State.FULL:
            return "Infuse the enrolled participants (sentinel first)"
        case Cohort.State.OBSERVING:
            return "DLT windows running; review opens when all are complete"
        case Cohort.State.IN_REVIEW:
            return "Safety review committee to sign the decision"
        case Cohort.State.PAUSED:
            return "Paused: enrollment and infusion refused until the committee resumes"
        case _:
            return f"Closed ({cohort.decision or 'no decision recorded'})"


def cohort_list(*, trial: Trial | None = None) -> QuerySet[Cohort]:
    """Cohorts with dose and enrolled count, in a constant number of queries."""
    qs = Cohort.objects.select_related("trial", "dose_level").annotate(enrolled_count=Count("enrollments"))
    if trial is not None:
        qs = qs.filter(trial=trial)
    return qs.order_by("trial__registry_id", "sequence")


def cohort_all_infused(cohort: Cohort) -> bool:
    """A full cohort whose every participant (replaced ones aside) had her infusion finished."""
    enrollments = list(cohort.enrollments.select_related("participant"))
    if len(enrollments) < cohort.capacity:
        return False
    needed = {e.participant_id for e in enrollments if not e.participant.replaced}
    finished = set(
        Infusion.objects.filter(cohort=cohort, status__in=Infusion.FINISHED).values_list("participant_id", flat=True)
    )
    return needed <= finished


def dlt_windows_complete(cohort: Cohort, *, today: date | None = None) -> bool:
    """True when the cohort is full, every evaluable (not replaced) participant is infused and her DLT
    window has ended: ``dlt_window_end < today`` in her site's time zone (the window's last day is
    included, so the review opens the day after it)."""
    enrollments = list(cohort.enrollments.select_related("participant__site"))
    if len(enrollments) < cohort.capacity:
        return False
    evaluable = [e.participant for e in enrollments if not e.participant.replaced]
    if not evaluable:
        return False
    for participant in evaluable:
        if participant.dlt_window_end is None:
            return False
        if not participant.dlt_window_end < (today or site_today(participant)):
            return False
    return True
