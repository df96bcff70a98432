"""Adverse events: the list with clocks, DLT candidates and confirmed DLTs, overdue clocks, the timeline."""

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from cohorts.models import Cohort, Participant
from safety.models import AdverseEvent, ReportingClock

OPEN_DLT_STATUSES = (AdverseEvent.DltStatus.CANDIDATE, AdverseEvent.DltStatus.CONFIRMED)


def participant_has_dlt_candidate(participant: Participant) -> bool:
    """True while any of the participant's events is a DLT candidate or a confirmed DLT.

    The sentinel hold uses it: the rest of a cohort waits while the sentinel has one.
    """
    return AdverseEvent.objects.filter(participant=participant, dlt_status__in=OPEN_DLT_STATUSES).exists()


def confirmed_dlts_at_dose(cohort: Cohort) -> int:
    """Confirmed DLTs among evaluable participants of every cohort at this cohort's dose level."""
    return (
        AdverseEvent.objects.filter(
            participant__enrollments__cohort__trial=cohort.trial_id,
            participant__enrollments__cohort__dose_level=cohort.dose_level_id,
            participant__replaced=False,
            dlt_status=AdverseEvent.DltStatus.CONFIRMED,
        )
        .values("participant")
        .distinct()
        .count()
    )


def adverse_event_list() -> QuerySet[AdverseEvent]:
    return AdverseEvent.objects.select_related(
        "participant__site", "ctcae_term", "reported_by", "dlt_decided_by"
    ).prefetch_related(Prefetch("clocks", queryset=ReportingClock.objects.select_related("done_by")))


def overdue_clocks() -> QuerySet[ReportingClock]:
    return ReportingClock.objects.filter(done_at__isnull=True, due_at__lt=timezone.now())


def participant_ae_timeline(participant: Participant) -> list[dict]:
    """The participant's adverse events as bars on a date axis, oldest onset first (one query).

    Each item: ``id``; ``term`` (the CTCAE term, else the free-text term, else the verbatim term);
    ``verbatim_term``; ``soc`` (or ""); ``onset`` and ``resolution`` (``date``; ``resolution`` is None
    while ongoing); ``ongoing``; ``onset_day`` (days since the DLT window's first day, the infusion
    day, or None before infusion); ``grade`` (current) and ``worst_grade``; ``serious``;
    ``relationship``; ``infusion_reaction``; ``dlt_status`` (an ``AdverseEvent.DltStatus`` value) and
    ``dlt_status_display``; ``in_dlt_window`` (onset inside the participant's DLT window).
    """
    start, end = participant.dlt_window_start, participant.dlt_window_end
    events = (
        AdverseEvent.objects.filter(participant=participant).select_related("ctcae_term").order_by("onset_date", "pk")
    )
    return [
        {
            "id": event.pk,
            "term": event.ctcae_term.term if event.ctcae_term else (event.ctcae_term_text or event.verbatim_term),
            "verbatim_term": event.verbatim_term,
            "soc": event.ctcae_term.soc if event.ctcae_term else "",
            "onset": event.onset_date,
            "resolution": event.resolution_date,
            "ongoing": event.resolution_date is None,
            "onset_day": (event.onset_date - start).days if start else None,
            "grade": event.grade,
            "worst_grade": event.worst_grade,
            "serious": event.serious,
            "relationship": event.relationship,
            "infusion_reaction": event.infusion_reaction,
            "dlt_status": event.dlt_status,
            "dlt_status_display": event.get_dlt_status_display(),
            "in_dlt_window": bool(start and end and start <= event.onset_date <= end),
        }
        for event in events
    ]
