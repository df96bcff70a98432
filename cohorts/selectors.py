"""Reads that the admin, the API and the services share."""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from cohorts import rules
from cohorts.models import (
    Cohort,
    ConsentDocument,
    ConsentRecord,
    DripRateReading,
    Enrollment,
    FollowUpVisit,
    GilbertSyndromeDiagnosis,
    Infusion,
    InfusionInterruption,
    Participant,
    ProtocolDeviation,
    ScreeningRecord,
    VitalSigns,
)
from trial.models import Trial


def site_today(participant: Participant) -> date:
    """Today's date where the participant is seen (the site's time zone)."""
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(participant.site.time_zone))


def consent_document_in_force(*, trial: Trial, on: date) -> ConsentDocument | None:
    return (
        ConsentDocument.objects.filter(trial=trial, effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .order_by("-effective_from")
        .first()
    )


def current_consent(participant: Participant, *, on: date | None = None) -> ConsentRecord | None:
    """The participant's signed, not withdrawn consent on the version in force, if any."""
    on = on or site_today(participant)
    document = consent_document_in_force(trial=participant.trial, on=on)
    if document is None:
        return None
    # Signed by the end of ``on`` in the site's time zone (not the active zone, which is UTC in tasks).
    end_of_day = datetime.combine(
        on + timedelta(days=1), time.min, tzinfo=zoneinfo.ZoneInfo(participant.site.time_zone)
    )
    return (
        participant.consents.filter(document=document, withdrawn_at__isnull=True, signed_at__lt=end_of_day)
        .order_by("-signed_at")
        .first()
    )


def criteria_specs(trial: Trial) -> tuple[rules.CriterionSpec, ...]:
    return rules.criteria_from_data(
        {"code": c.code, "kind": c.kind, "rule": c.rule, "params": c.params, "text": c.text,
         "needs_judgment": c.needs_judgment}
        for c in trial.criteria.order_by("order")
    )  # fmt: skip


_FACT_FIELDS = (
    "years_since_last_menses", "natural_menopause", "weight_kg", "height_cm", "multiple_site_fracture_history",
    "t_score_lumbar_l1_l4", "t_score_total_hip", "t_score_femoral_neck", "high_fall_risk", "frax_major_pct",
    "frax_hip_pct", "glucocorticoid_dose_mg_per_day", "glucocorticoid_duration_months", "measurable_lumbar_vertebrae",
    "dxa_impeded", "ast_x_uln", "alt_x_uln", "alp_x_uln", "bilirubin_x_uln", "egfr", "tsh", "tsh_lower_limit",
    "tsh_upper_limit", "t4_in_range", "hbv_dna_cps_per_ml", "hbv_dna_uln", "hcv_antibody_positive",
    "hcv_rna_above_uln", "syphilis_antibody_positive", "hiv_antibody_positive", "last_pth_analog_date",
    "last_rankl_inhibitor_date", "oral_bisphosphonate_cumulative_months", "last_oral_bisphosphonate_date",
    "last_iv_bisphosphonate_date", "prior_cell_therapy", "transplant_or_radiation", "last_other_trial_date",
)  # fmt: skip


def gilbert_syndrome(participant: Participant) -> rules.DocumentedDiagnosis | None:
    """Gilbert's syndrome as an investigator documented it: by whom and on which site date (None: not documented)."""
    diagnosis = (
        GilbertSyndromeDiagnosis.objects.filter(participant=participant, documented=True)
        .select_related("recorded_by")
        .first()
    )
    if diagnosis is None:
        return None
    who = diagnosis.recorded_by
    return rules.DocumentedDiagnosis(
        by=who.get_full_name() or who.get_username(),
        on=timezone.localdate(diagnosis.recorded_at, timezone=site_zone(participant)),
    )


def screening_facts(participant: Participant, *, on: date | None = None) -> rules.ScreeningFacts:
    """The plain values the eligibility rules read, from the screening record, consent, judgments and
    documented diagnoses."""
    screening: ScreeningRecord | None = getattr(participant, "screening", None)
    judgments = {j.code: j.satisfied for j in participant.judgments.all()}
    consent_signed = current_consent(participant, on=on) is not None
    base = {
        "sex": participant.sex,
        "date_of_birth": participant.date_of_birth,
        "consent_signed": consent_signed,
        "judgments": judgments,
        "gilbert_syndrome": gilbert_syndrome(participant),
    }
    if screening is None:
        return rules.ScreeningFacts(**base)
    fractures = None
    if screening.fracture_history_taken:
        fractures = tuple(
            rules.Fracture(
                date=f.date, site=f.site, on_anti_osteoporosis_treatment=f.on_anti_osteoporosis_treatment,
                fragility=f.fragility,
            )
            for f in screening.fractures.all()
        )  # fmt: skip
    return rules.ScreeningFacts(
        **base,
        screening_date=screening.screening_date,
        fractures=fractures,
        bone_treatment_history_recorded=screening.bone_treatment_history_taken,
        other_trial_history_recorded=screening.other_trial_history_taken,
        **{name: getattr(screening, name) for name in _FACT_FIELDS},
    )


def consent_criteria(specs) -> frozenset[str]:
    """Codes of the criteria that only ask for signed consent (I1 here): a missing consent is not a screen failure."""
    return frozenset(
        spec.code for spec in specs if spec.rule == "boolean_fact" and spec.params.get("fact") == "consent_signed"
    )


@dataclass(frozen=True)
class EligibilitySummary:
    result: rules.EligibilityResult
    unmet: tuple[str, ...]  # failing on data or judgment, consent aside
    missing: tuple[str, ...]
    pending_judgment: tuple[str, ...]
    consent_missing: bool

    @property
    def eligible(self) -> bool:
        return self.result.eligible


def eligibility_summary(participant: Participant, *, on: date | None = None) -> EligibilitySummary:
    specs = criteria_specs(participant.trial)
    result = rules.evaluate(specs, screening_facts(participant, on=on))
    consent_codes = consent_criteria(specs)
    failing_consent = [c for c in result.unmet + result.missing if c in consent_codes]
    return EligibilitySummary(
        result=result,
        unmet=tuple(c for c in result.unmet if c not in consent_codes),
        missing=tuple(c for c in result.missing if c not in consent_codes),
        pending_judgment=tuple(result.pending_judgment),
        consent_missing=bool(failing_consent),
    )


def eligibility_for(participant: Participant, *, on: date | None = None) -> rules.EligibilityResult:
    return rules.evaluate(criteria_specs(participant.trial), screening_facts(participant, on=on))


@dataclass(frozen=True)
class CohortRow:
    cohort: Cohort
    enrolled: int
    next_step: str


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


def participant_list(*, trial: Trial | None = None) -> QuerySet[Participant]:
    qs = Participant.objects.select_related("trial", "site", "screening").prefetch_related(
        Prefetch("enrollments", queryset=Enrollment.objects.select_related("cohort__dose_level"))
    )
    if trial is not None:
        qs = qs.filter(trial=trial)
    return qs.order_by("trial__registry_id", "screening_number")


# --- infusions, holds, DLT windows, follow-up visits, deviations ---------------------------------


def site_zone(participant: Participant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(participant.site.time_zone)


def format_site_time(moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``2026-12-02 09:00 (Asia/Shanghai)``: how a hold's end is told to the nurse."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def infusion_day(infusion: Infusion, zone: zoneinfo.ZoneInfo) -> date:
    """Day 0 of the DLT window and the visit schedule: the site's date the infusion started."""
    return timezone.localdate(infusion.started_at, timezone=zone)


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
                "sentinel_hold",
                f"Sentinel first: {sentinel.participant} is the sentinel of cohort {cohort.sequence} and is "
                f"infused alone, then observed for {trial.sentinel_observation_days} days, before anyone else.",
                None,
            )
    elif infusions[0].participant_id != participant.pk:
        first = infusions[0]
        if first.ended_at is None:
            return InfusionHold(
                "sentinel_hold",
                f"Sentinel observation: the sentinel's infusion ({first.participant}) is still in progress; the next "
                f"infusion is possible {trial.sentinel_observation_days} days after it ends.",
                None,
            )
        until = first.ended_at.astimezone(zone) + timedelta(days=trial.sentinel_observation_days)
        if at < until:
            return InfusionHold(
                "sentinel_hold",
                f"Sentinel observation: the next infusion is possible from {format_site_time(until, zone)}, "
                f"{trial.sentinel_observation_days} days after the sentinel's infusion ({first.participant}) ended.",
                until,
            )
        from safety.selectors import participant_has_dlt_candidate

        if participant_has_dlt_candidate(first.participant):
            return InfusionHold(
                "sentinel_hold",
                f"Sentinel observation: the sentinel ({first.participant}) has a candidate or confirmed DLT; no other "
                f"participant of cohort {cohort.sequence} is infused until an investigator rejects it or the safety "
                "review committee decides.",
                None,
            )

    running = [i for i in others if i.ended_at is None]
    if running:
        return InfusionHold(
            "stagger_hold",
            f"Stagger: the infusion of {running[0].participant} is in progress; the next infusion is possible "
            f"{trial.stagger_hours} h after it ends.",
            None,
        )
    if others and trial.stagger_hours:
        last = max(others, key=lambda i: i.ended_at)
        until = last.ended_at.astimezone(zone) + timedelta(hours=trial.stagger_hours)
        if at < until:
            return InfusionHold(
                "stagger_hold",
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
    Participant.Status.WITHDRAWN, Participant.Status.LOST_TO_FOLLOW_UP, Participant.Status.COMPLETED,
)  # fmt: skip


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


def followup_visit_list() -> QuerySet[FollowUpVisit]:
    return FollowUpVisit.objects.select_related("participant__site", "infusion__cohort", "recorded_by").order_by(
        "target_date", "participant_id", "day_offset"
    )


def deviation_list() -> QuerySet[ProtocolDeviation]:
    return ProtocolDeviation.objects.select_related(
        "trial", "participant", "detected_by", "closed_by", "infusion", "visit", "drip_rate_reading"
    ).order_by("-detected_at", "-pk")


@dataclass(frozen=True)
class TimelineEntry:
    kind: str  # enrollment | infusion | dlt_window | visit | deviation
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
        entries.append(TimelineEntry(
            "enrollment", f"Enrolled in cohort {enrollment.cohort.sequence} ({enrollment.cohort.dose_level.label}, "
            f"slot {enrollment.slot}{role})", local(enrollment.enrolled_at), "", "Enrolled", "ok",
        ))  # fmt: skip
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
        entries.append(TimelineEntry(
            "infusion", f"Infusion {infusion.sequence}: {cells} cells, lot {infusion.product_lot}; {detail}",
            f"{local(infusion.started_at)} – {local(infusion.ended_at) or 'running'}", "",
            infusion.get_status_display(), "warn" if warn else "ok",
        ))  # fmt: skip
    if participant.dlt_window_start and participant.dlt_window_end:
        if today > participant.dlt_window_end:
            state, tone = "Complete", "ok"
        elif today < participant.dlt_window_start:
            state, tone = "Not started", ""
        else:
            day = (today - participant.dlt_window_start).days
            state, tone = f"Day {day} of {(participant.dlt_window_end - participant.dlt_window_start).days}", "due"
        entries.append(TimelineEntry(
            "dlt_window", "DLT window (day 0 = infusion day, last day included)", "",
            f"{participant.dlt_window_start} to {participant.dlt_window_end}", state, tone,
        ))  # fmt: skip
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
        entries.append(TimelineEntry(
            "visit", f"{visit.name} (day {visit.day_offset})", str(visit.target_date),
            f"{visit.window_start} to {visit.window_end}", state, tone,
        ))  # fmt: skip
    for deviation in participant.deviations.order_by("detected_at"):
        entries.append(TimelineEntry(
            "deviation", f"{deviation.get_severity_display()} deviation: {deviation.get_category_display()}",
            str(deviation.occurred_on), "", deviation.get_status_display(),
            "warn" if deviation.status == ProtocolDeviation.Status.OPEN else "ok",
        ))  # fmt: skip
    return entries
