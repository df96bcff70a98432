"""Reads the admin, the API, the services and the cohorts app need from the safety data."""

import hashlib
import json
import zoneinfo
from datetime import timedelta

from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from cohorts.models import Cohort, Enrollment, FollowUpVisit, Infusion, Participant
from safety import dlt, rules
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


# --- what a safety review shows ---------------------------------------------------------------


def canonical_json(data) -> str:
    """One byte-exact text for a JSON value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def full_dose_given(*, cells_given: int, dose_cells: int, tolerance_pct) -> bool:
    """At least the dose level's cells less the protocol's tolerance were given (exact integer math)."""
    return cells_given * 100 >= dose_cells * (100 - tolerance_pct)


def participant_evaluability(trial) -> dict[int, dlt.Evaluability]:
    """Each enrolled participant's evaluability under the trial's rule (participant id → verdict), in
    three queries: the enrollments, the finished infusions' cells, the confirmed DLTs."""
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    enrollments = Enrollment.objects.filter(trial=trial).select_related("participant", "cohort__dose_level")
    given: dict[int, int] = {}
    for participant_id, cells in Infusion.objects.filter(trial=trial, status__in=Infusion.FINISHED).values_list(
        "participant_id", "cells_administered"
    ):
        given[participant_id] = given.get(participant_id, 0) + (cells or 0)
    with_dlt = set(
        AdverseEvent.objects.filter(participant__trial=trial, dlt_status=AdverseEvent.DltStatus.CONFIRMED)
        .order_by()
        .values_list("participant_id", flat=True)
    )
    verdicts = {}
    for enrollment in enrollments:
        participant = enrollment.participant
        infused = participant.dlt_window_start is not None
        verdicts[participant.pk] = dlt.evaluability(
            rule=trial.evaluability_rule, infused=infused,
            full_dose=full_dose_given(cells_given=given.get(participant.pk, 0),
                                      dose_cells=enrollment.cohort.dose_level.cells,
                                      tolerance_pct=trial.dose_tolerance_pct),
            has_dlt=participant.pk in with_dlt, window_over=infused and participant.dlt_window_end < today,
            replaced=participant.replaced,
        )  # fmt: skip
    return verdicts


def unrecorded_dlt_window_visits(trial, *, today=None) -> list[FollowUpVisit]:
    """Safety visits inside a participant's DLT window that were missed, or are overdue: still scheduled
    after their window closed (site date). Withdrawn participants' visits are not expected."""
    if today is None:
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    return list(
        FollowUpVisit.objects.filter(participant__trial=trial, target_date__lte=F("participant__dlt_window_end"))
        .filter(Q(status=FollowUpVisit.Status.MISSED) | Q(status=FollowUpVisit.Status.SCHEDULED, window_end__lt=today))
        .exclude(participant__status=Participant.Status.WITHDRAWN)
        .select_related("participant")
        .order_by("participant__study_id", "target_date")
    )


def _name(user) -> str:
    return (user.get_full_name().strip() or user.get_username()) if user else ""


def review_snapshot(cohort: Cohort) -> dict:
    """The data the committee reviews and signs (frozen when the review opens):

    * per dose level: treated, evaluable and DLTs; the outcome string in the common notation;
    * each participant's evaluability under the protocol's rule, and who needs a replacement;
    * both designs' recommendations (3+3 in the protocol's variant) and their MTD selections;
    * adverse events by worst grade; every serious event (study ID, term, grade, relationship,
      expectedness, outcome); every DLT candidate with the investigator's decision and reason;
    * every safety visit in a DLT window that was missed or is overdue.

    A confirmed DLT is a T, an evaluable participant without one an N. Pending DLT candidates are
    listed: no decision can be signed while any remains.
    """
    trial = cohort.trial
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    doses = list(trial.dose_levels.order_by("level"))
    enrollments = list(
        Enrollment.objects.filter(trial=trial)
        .select_related("participant", "cohort__dose_level")
        .order_by("cohort__sequence", "slot")
    )
    verdicts = participant_evaluability(trial)
    events = list(
        AdverseEvent.objects.filter(participant__trial=trial)
        .select_related("participant", "ctcae_term", "dlt_decided_by")
        .order_by("onset_date", "pk")
    )
    confirmed = {e.participant_id for e in events if e.dlt_status == AdverseEvent.DltStatus.CONFIRMED}

    per_dose = {d.level: {"dose_level": d.level, "label": d.label, "cells": d.cells, "treated": 0, "evaluable": 0,
                          "dlts": 0} for d in doses}  # fmt: skip
    participants_out = []
    cohorts_out: list[str] = []
    current_group: tuple[int, int] | None = None
    for enrollment in enrollments:
        participant = enrollment.participant
        level = enrollment.cohort.dose_level.level
        verdict = verdicts[participant.pk]
        participants_out.append({
            "study_id": participant.study_id, "cohort": enrollment.cohort.sequence, "dose_level": level,
            "slot": enrollment.slot, "evaluability": verdict.status, "reason": verdict.reason,
        })  # fmt: skip
        if participant.dlt_window_start is not None:
            per_dose[level]["treated"] += 1
        if not verdict.evaluable:
            continue
        has_dlt = participant.pk in confirmed
        per_dose[level]["evaluable"] += 1
        per_dose[level]["dlts"] += int(has_dlt)
        group = (enrollment.cohort.sequence, level)
        if group != current_group:
            cohorts_out.append(str(level))
            current_group = group
        cohorts_out[-1] += "T" if has_dlt else "N"
    outcomes = " ".join(cohorts_out)

    by_grade = {str(g): 0 for g in range(1, 6)}
    for event in events:
        by_grade[str(event.worst_grade)] += 1
    num_doses, target = len(doses), float(trial.boin_target_rate)
    confirm_on_six = trial.three_plus_three_variant == "confirm_on_six"
    recommendations, mtd_selections = {}, {}
    for name, call in (
        ("3+3", lambda: rules.three_plus_three(outcomes, num_doses=num_doses, strict=False,
                                               confirm_on_six=confirm_on_six)),
        ("boin", lambda: rules.boin(outcomes, num_doses=num_doses, target=target)),
    ):
        try:
            recommendations[name] = call().to_dict()
        except ValueError as exc:  # a path the design cannot judge: show why rather than guess
            recommendations[name] = {"recommended_dose": None, "continue": False, "reason": str(exc)}
        selection = rules.select_mtd(name, outcomes, num_doses=num_doses, target=target)
        mtd_selections[name] = selection.to_dict() | {"statement": selection.statement}

    def term(event: AdverseEvent) -> str:
        return event.ctcae_term.term if event.ctcae_term else (event.ctcae_term_text or event.verbatim_term)

    return {
        "trial": trial.registry_id,
        "protocol_version": trial.protocol_version,
        "as_of": str(today),
        "cohort": {
            "id": cohort.pk,
            "sequence": cohort.sequence,
            "dose_level": cohort.dose_level.level,
            "state": cohort.state,
        },
        "dose_levels": [per_dose[d.level] for d in doses],
        "outcomes": outcomes,
        "evaluability_rule": trial.evaluability_rule,
        "participants": participants_out,
        "needs_replacement": [p["study_id"] for p in participants_out if p["evaluability"] == "not_evaluable"],
        "adverse_events": {
            "total": len(events),
            "by_worst_grade": by_grade,
            "serious": sum(1 for e in events if e.serious),
            "pending_dlt_candidates": sorted(e.pk for e in events if e.dlt_status == AdverseEvent.DltStatus.CANDIDATE),
        },
        "serious_events": [
            {"id": e.pk, "study_id": e.participant.study_id, "term": term(e), "grade": e.worst_grade,
             "relationship": e.relationship, "expected": e.expected, "outcome": e.outcome,
             "onset_date": str(e.onset_date)}
            for e in events if e.serious
        ],
        "dlt_candidates": [
            {"id": e.pk, "study_id": e.participant.study_id, "term": term(e), "grade": e.worst_grade,
             "status": e.dlt_status, "decided_by": _name(e.dlt_decided_by),
             "decided_at": e.dlt_decided_at.isoformat() if e.dlt_decided_at else None, "reason": e.dlt_reason}
            for e in events if e.dlt_status != AdverseEvent.DltStatus.NOT_CANDIDATE
        ],
        "unrecorded_visits": [
            {"id": v.pk, "study_id": v.participant.study_id, "code": v.code, "target_date": str(v.target_date),
             "window_end": str(v.window_end), "status": "missed" if v.status == FollowUpVisit.Status.MISSED
             else "overdue", "missed_reason": v.missed_reason}
            for v in unrecorded_dlt_window_visits(trial, today=today)
        ],
        "three_plus_three_variant": trial.three_plus_three_variant,
        "recommendations": recommendations,
        "mtd_selection": mtd_selections,
        "design": trial.escalation_design,
    }


# --- the participant's timeline (drawn on the same axis as the infusion and the DLT window) ----------


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


def trial_summary(trial) -> dict:
    """What a sponsor dashboard shows per cohort, in four queries whatever the trial's size:
    dose, state, capacity, enrolled, infused, in DLT window, DLTs, AEs by worst grade, serious AEs,
    and the next review (the open one, or the day the last DLT window ends)."""
    from safety.models import SafetyReview

    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    cohorts = list(Cohort.objects.filter(trial=trial).select_related("dose_level").order_by("sequence"))
    enrollments = list(Enrollment.objects.filter(trial=trial).select_related("participant"))
    events = list(AdverseEvent.objects.filter(participant__trial=trial).only(
        "participant_id", "worst_grade", "serious", "dlt_status"))  # fmt: skip
    open_reviews = {r.cohort_id: r for r in SafetyReview.objects.filter(trial=trial, state=SafetyReview.State.OPEN)}
    cohort_of = {e.participant_id: e.cohort_id for e in enrollments}
    rows = []
    for cohort in cohorts:
        people = [e.participant for e in enrollments if e.cohort_id == cohort.pk]
        infused = [p for p in people if p.dlt_window_start]
        in_window = [p for p in infused if p.dlt_window_start <= today <= p.dlt_window_end]
        mine = [ev for ev in events if cohort_of.get(ev.participant_id) == cohort.pk]
        review = open_reviews.get(cohort.pk)
        if review:
            next_review = {"review": review.pk, "state": review.state, "opens_on": None}
        elif cohort.state == Cohort.State.OBSERVING and infused:
            next_review = {"review": None, "state": None,
                           "opens_on": str(max(p.dlt_window_end for p in infused) + timedelta(days=1))}  # fmt: skip
        else:
            next_review = None
        rows.append({
            "cohort": cohort.pk, "sequence": cohort.sequence, "dose_level": cohort.dose_level.level,
            "dose_label": cohort.dose_level.label, "cells": cohort.dose_level.cells,
            "cells_display": cohort.dose_level.cells_display, "state": cohort.state, "capacity": cohort.capacity,
            "enrolled": len(people), "infused": len(infused), "in_dlt_window": len(in_window),
            "dlts": len({ev.participant_id for ev in mine if ev.dlt_status == AdverseEvent.DltStatus.CONFIRMED}),
            "dlt_candidates": sum(1 for ev in mine if ev.dlt_status == AdverseEvent.DltStatus.CANDIDATE),
            "adverse_events_by_grade": {str(g): sum(1 for ev in mine if ev.worst_grade == g) for g in range(1, 6)},
            "serious_adverse_events": sum(1 for ev in mine if ev.serious),
            "next_review": next_review,
        })  # fmt: skip
    return {"trial": trial.registry_id, "status": trial.status, "as_of": str(today), "cohorts": rows}
