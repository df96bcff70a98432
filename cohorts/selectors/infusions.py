"""Who may be infused now (the sentinel and stagger holds), and the infusions with their readings."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from cohorts.models import (
    Cohort,
    DripRateReading,
    Enrollment,
    Infusion,
    InfusionInterruption,
    Participant,
    VitalSigns,
)
from cohorts.ports import safety_reader
from cohorts.selectors.sites import format_site_time, site_zone
from core.errors import ErrorCode


@dataclass(frozen=True)
class InfusionHold:
    """Why a participant may not be infused at a given moment, and until when (None: until an event)."""

    code: str  # sentinel_hold | stagger_hold
    message: str
    until: datetime | None


def infusion_hold(
    *, participant: Participant, at: datetime | None = None, cohort: Cohort | None = None
) -> InfusionHold | None:
    """The sentinel or stagger hold on infusing ``participant`` at ``at`` (default now), or None.

    Sentinel (DESIGN rule 4): the cohort's sentinel is infused first and alone; the others wait until
    ``sentinel_observation_days`` have passed after the sentinel's infusion ended *and* the sentinel has
    no candidate or confirmed DLT. If the designated sentinel was replaced before being infused, whoever
    is infused first is observed alone instead. Stagger: an infusion starts at least ``stagger_hours``
    after every other infusion of the cohort ended (measured from the end: the more cautious reading).
    Services call this with the cohort row locked; the admin and the API call it to show the hold.
    """
    at = at or timezone.now()
    enrollment = (
        Enrollment.objects.filter(participant=participant).select_related("cohort__trial").order_by("pk").first()
    )
    if enrollment is None:
        return None
    cohort = cohort or enrollment.cohort
    trial = cohort.trial
    zone = site_zone(participant)
    infusions = list(Infusion.objects.filter(cohort=cohort).select_related("participant").order_by("started_at", "pk"))
    others = [i for i in infusions if i.participant_id != participant.pk]

    if not infusions:
        sentinel = cohort.enrollments.filter(is_sentinel=True).select_related("participant").first()
        if sentinel is not None and sentinel.participant_id != participant.pk and not sentinel.participant.replaced:
            return InfusionHold(
                ErrorCode.SENTINEL_HOLD,
                f"Sentinel first: {sentinel.participant} is the sentinel of cohort {cohort.sequence} and is "
                f"infused alone, then observed for {trial.sentinel_observation_days} days, before anyone else.",
                None,
            )
    elif infusions[0].participant_id != participant.pk:
        first = infusions[0]
        if first.ended_at is None:
            return InfusionHold(
                ErrorCode.SENTINEL_HOLD,
                f"Sentinel observation: the sentinel's infusion ({first.participant}) is still in progress; the next "
                f"infusion is possible {trial.sentinel_observation_days} days after it ends.",
                None,
            )
        until = first.ended_at.astimezone(zone) + timedelta(days=trial.sentinel_observation_days)
        if at < until:
            return InfusionHold(
                ErrorCode.SENTINEL_HOLD,
                f"Sentinel observation: the next infusion is possible from {format_site_time(until, zone)}, "
                f"{trial.sentinel_observation_days} days after the sentinel's infusion ({first.participant}) ended.",
                until,
            )
        if safety_reader().participant_has_dlt_candidate(first.participant):
            return InfusionHold(
                ErrorCode.SENTINEL_HOLD,
                f"Sentinel observation: the sentinel ({first.participant}) has a candidate or confirmed DLT; no other "
                f"participant of cohort {cohort.sequence} is infused until an investigator rejects it or the safety "
                "review committee decides.",
                None,
            )

    running = [i for i in others if i.ended_at is None]
    if running:
        return InfusionHold(
            ErrorCode.STAGGER_HOLD,
            f"Stagger: the infusion of {running[0].participant} is in progress; the next infusion is possible "
            f"{trial.stagger_hours} h after it ends.",
            None,
        )
    if others and trial.stagger_hours:
        last = max(others, key=lambda i: i.ended_at)
        until = last.ended_at.astimezone(zone) + timedelta(hours=trial.stagger_hours)
        if at < until:
            return InfusionHold(
                ErrorCode.STAGGER_HOLD,
                f"Stagger: the next infusion is possible from {format_site_time(until, zone)}, "
                f"{trial.stagger_hours} h after the previous infusion ({last.participant}) ended.",
                until,
            )
    return None


@dataclass(frozen=True)
class InfusionReadiness:
    participant: Participant
    is_sentinel: bool
    hold: InfusionHold | None


NOT_INFUSABLE_STATUSES = (
    Participant.Status.WITHDRAWN,
    Participant.Status.LOST_TO_FOLLOW_UP,
    Participant.Status.COMPLETED,
)


def cohort_infusion_readiness(*, cohort: Cohort, at: datetime | None = None) -> list[InfusionReadiness]:
    """Each enrolled participant of ``cohort`` still to be infused, and what holds her back now."""
    infused = set(Infusion.objects.filter(cohort=cohort).values_list("participant_id", flat=True))
    enrollments = cohort.enrollments.select_related("participant__site").order_by("slot")
    return [
        InfusionReadiness(e.participant, e.is_sentinel, infusion_hold(participant=e.participant, at=at, cohort=cohort))
        for e in enrollments
        if e.participant_id not in infused
        and not e.participant.replaced
        and e.participant.status not in NOT_INFUSABLE_STATUSES
    ]


def infusion_list() -> QuerySet[Infusion]:
    """Infusions with everything the API and admin show, in a constant number of queries."""
    return (
        Infusion.objects.select_related("trial", "participant__site", "cohort", "dose_level", "administered_by")
        .prefetch_related(
            Prefetch("readings", queryset=DripRateReading.objects.select_related("deviation").order_by("observed_at")),
            Prefetch("interruptions", queryset=InfusionInterruption.objects.order_by("stopped_at")),
            Prefetch("vitals", queryset=VitalSigns.objects.order_by("measured_at")),
        )
        .order_by("-started_at", "-pk")
    )
