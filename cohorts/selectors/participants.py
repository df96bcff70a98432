"""Participants: the list with their enrollment, and one participant's timeline."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Prefetch, QuerySet

from cohorts.models import (
    Enrollment,
    FollowUpVisit,
    Participant,
    ProtocolDeviation,
)
from cohorts.selectors.sites import site_today, site_zone
from trial.models import Trial


def participant_list(*, trial: Trial | None = None) -> QuerySet[Participant]:
    qs = Participant.objects.select_related("trial", "site", "screening").prefetch_related(
        Prefetch("enrollments", queryset=Enrollment.objects.select_related("cohort__dose_level"))
    )
    if trial is not None:
        qs = qs.filter(trial=trial)
    return qs.order_by("trial__registry_id", "screening_number")


@dataclass(frozen=True)
class TimelineEntry:
    kind: str  # enrollment | infusion | dlt_window | visit | deviation | adverse_event (from safety, via cohorts.ports)
    label: str
    when: str
    window: str
    status: str
    tone: str  # "ok" | "warn" | "due" | "" — the admin colours rows by it


def participant_timeline(participant: Participant, *, today: date | None = None) -> list[TimelineEntry]:
    """Enrollment, infusion(s), DLT window and visits with their windows and status, in date order."""
    zone = site_zone(participant)
    today = today or site_today(participant)

    def local(moment: datetime | None) -> str:
        return "" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    entries: list[TimelineEntry] = []
    for enrollment in participant.enrollments.select_related("cohort__dose_level"):
        role = ", sentinel" if enrollment.is_sentinel else ""
        entries.append(
            TimelineEntry(
                "enrollment",
                f"Enrolled in cohort {enrollment.cohort.sequence} ({enrollment.cohort.dose_level.label}, "
                f"slot {enrollment.slot}{role})",
                local(enrollment.enrolled_at),
                "",
                "Enrolled",
                "ok",
            )
        )
    infusions = participant.infusions.prefetch_related("readings", "interruptions").order_by("started_at")
    for infusion in infusions:
        flagged = sum(1 for r in infusion.readings.all() if r.out_of_range)
        readings = len(infusion.readings.all())
        detail = f"{readings} rate reading(s)" + (f", {flagged} outside the protocol" if flagged else "")
        if infusion.average_drops_per_minute is not None:
            off = " (outside the protocol)" if infusion.average_rate_out_of_range else ""
            detail += f"; average {infusion.average_drops_per_minute} drops/min{off}"
        cells = infusion.cells_administered_display or infusion.cells_planned_display + " planned"
        warn = flagged or infusion.average_rate_out_of_range or infusion.status == "stopped_early"
        entries.append(
            TimelineEntry(
                "infusion",
                f"Infusion {infusion.sequence}: {cells} cells, lot {infusion.product_lot}; {detail}",
                f"{local(infusion.started_at)} – {local(infusion.ended_at) or 'running'}",
                "",
                infusion.get_status_display(),
                "warn" if warn else "ok",
            )
        )
    if participant.dlt_window_start and participant.dlt_window_end:
        if today > participant.dlt_window_end:
            state, tone = "Complete", "ok"
        elif today < participant.dlt_window_start:
            state, tone = "Not started", ""
        else:
            day = (today - participant.dlt_window_start).days
            state, tone = f"Day {day} of {(participant.dlt_window_end - participant.dlt_window_start).days}", "due"
        entries.append(
            TimelineEntry(
                "dlt_window",
                "DLT window (day 0 = infusion day, last day included)",
                "",
                f"{participant.dlt_window_start} to {participant.dlt_window_end}",
                state,
                tone,
            )
        )
    for visit in participant.visits.order_by("target_date", "day_offset"):
        if visit.status == FollowUpVisit.Status.COMPLETED:
            state = f"Done {visit.done_on}" + (" — outside the window" if visit.out_of_window else "")
            tone = "warn" if visit.out_of_window else "ok"
        elif visit.status == FollowUpVisit.Status.MISSED:
            state, tone = f"Missed: {visit.missed_reason}", "warn"
        elif today > visit.window_end:
            state, tone = "Overdue (window closed)", "warn"
        elif today >= visit.window_start:
            state, tone = "Due now (in window)", "due"
        else:
            state, tone = "Scheduled", ""
        entries.append(
            TimelineEntry(
                "visit",
                f"{visit.name} (day {visit.day_offset})",
                str(visit.target_date),
                f"{visit.window_start} to {visit.window_end}",
                state,
                tone,
            )
        )
    for deviation in participant.deviations.order_by("detected_at"):
        entries.append(
            TimelineEntry(
                "deviation",
                f"{deviation.get_severity_display()} deviation: {deviation.get_category_display()}",
                str(deviation.occurred_on),
                "",
                deviation.get_status_display(),
                "warn" if deviation.status == ProtocolDeviation.Status.OPEN else "ok",
            )
        )
    return entries
