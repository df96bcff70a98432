"""What a safety review shows and signs: the snapshot, evaluability, overdue DLT-window visits, digests."""

import hashlib
import json
import zoneinfo

from django.db.models import F, Q
from django.utils import timezone

from cohorts.models import Cohort, Enrollment, FollowUpVisit, Infusion, Participant
from safety import dlt, rules
from safety.models import AdverseEvent
from safety.selectors import dose_finding


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
            rule=trial.evaluability_rule,
            infused=infused,
            full_dose=full_dose_given(
                cells_given=given.get(participant.pk, 0),
                dose_cells=enrollment.cohort.dose_level.cells,
                tolerance_pct=trial.dose_tolerance_pct,
            ),
            has_dlt=participant.pk in with_dlt,
            window_over=infused and participant.dlt_window_end < today,
            replaced=participant.replaced,
        )
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

    per_dose = {
        d.level: {"dose_level": d.level, "label": d.label, "cells": d.cells, "treated": 0, "evaluable": 0, "dlts": 0}
        for d in doses
    }
    participants_out = []
    for enrollment in enrollments:
        participant = enrollment.participant
        level = enrollment.cohort.dose_level.level
        verdict = verdicts[participant.pk]
        participants_out.append(
            {
                "study_id": participant.study_id,
                "cohort": enrollment.cohort.sequence,
                "dose_level": level,
                "slot": enrollment.slot,
                "evaluability": verdict.status,
                "reason": verdict.reason,
            }
        )
        if participant.dlt_window_start is not None:
            per_dose[level]["treated"] += 1
        if verdict.evaluable:
            per_dose[level]["evaluable"] += 1
            per_dose[level]["dlts"] += int(participant.pk in confirmed)
    outcomes = dose_finding.outcome_string(enrollments, verdicts, confirmed)

    by_grade = {str(g): 0 for g in range(1, 6)}
    for event in events:
        by_grade[str(event.worst_grade)] += 1
    num_doses, target = len(doses), float(trial.boin_target_rate)
    confirm_on_six = trial.three_plus_three_variant == "confirm_on_six"
    recommendations, mtd_selections = {}, {}
    for name, call in (
        (
            "3+3",
            lambda: rules.three_plus_three(outcomes, num_doses=num_doses, strict=False, confirm_on_six=confirm_on_six),
        ),
        ("boin", lambda: rules.boin(outcomes, num_doses=num_doses, target=target)),
    ):
        try:
            recommendations[name] = call().to_dict()
        except ValueError as exc:  # a path the design cannot judge: show why rather than guess
            recommendations[name] = {"recommended_dose": None, "continue": False, "reason": str(exc)}
        selection = rules.select_mtd(name, outcomes, num_doses=num_doses, target=target)
        mtd_selections[name] = selection.to_dict() | {"statement": selection.statement}
    undecided = {e.participant_id for e in events if e.dlt_status == AdverseEvent.DltStatus.CANDIDATE}
    people = dose_finding.tite_participants(
        enrollments, verdicts, confirmed=confirmed, undecided=undecided, today=today, window_days=trial.dlt_window_days
    )
    recommendations[dose_finding.TITE_KEY] = dose_finding.tite_boin_opinion(
        trial, people, num_doses=num_doses, current_dose=cohort.dose_level.level
    )

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
            {
                "id": e.pk,
                "study_id": e.participant.study_id,
                "term": term(e),
                "grade": e.worst_grade,
                "relationship": e.relationship,
                "expected": e.expected,
                "outcome": e.outcome,
                "onset_date": str(e.onset_date),
            }
            for e in events
            if e.serious
        ],
        "dlt_candidates": [
            {
                "id": e.pk,
                "study_id": e.participant.study_id,
                "term": term(e),
                "grade": e.worst_grade,
                "status": e.dlt_status,
                "decided_by": _name(e.dlt_decided_by),
                "decided_at": e.dlt_decided_at.isoformat() if e.dlt_decided_at else None,
                "reason": e.dlt_reason,
            }
            for e in events
            if e.dlt_status != AdverseEvent.DltStatus.NOT_CANDIDATE
        ],
        "unrecorded_visits": [
            {
                "id": v.pk,
                "study_id": v.participant.study_id,
                "code": v.code,
                "target_date": str(v.target_date),
                "window_end": str(v.window_end),
                "status": "missed" if v.status == FollowUpVisit.Status.MISSED else "overdue",
                "missed_reason": v.missed_reason,
            }
            for v in unrecorded_dlt_window_visits(trial, today=today)
        ],
        "three_plus_three_variant": trial.three_plus_three_variant,
        "recommendations": recommendations,
        "mtd_selection": mtd_selections,
        "design": trial.escalation_design,
        "dose_finding": dose_finding.dose_finding_section(trial, outcomes=outcomes, num_doses=num_doses),
    }


def trial_dose_finding(trial, *, today=None, verdicts: dict | None = None) -> dict:
    """The pathways of the next cohorts and TITE-BOIN from the trial's current data (the dashboard), built as
    the review snapshot builds them, in a constant number of queries. ``today``: the site's date; ``verdicts``:
    ``participant_evaluability(trial)`` when the caller has it already."""
    if today is None:
        today = timezone.localdate(timezone=zoneinfo.ZoneInfo(trial.sites.order_by("pk").first().time_zone))
    num_doses = trial.dose_levels.count()
    enrollments = list(
        Enrollment.objects.filter(trial=trial)
        .select_related("participant", "cohort__dose_level")
        .order_by("cohort__sequence", "slot")
    )
    verdicts = participant_evaluability(trial) if verdicts is None else verdicts
    statuses = list(
        AdverseEvent.objects.filter(participant__trial=trial)
        .exclude(dlt_status=AdverseEvent.DltStatus.NOT_CANDIDATE)
        .values_list("participant_id", "dlt_status")
    )
    confirmed = {pk for pk, status in statuses if status == AdverseEvent.DltStatus.CONFIRMED}
    undecided = {pk for pk, status in statuses if status == AdverseEvent.DltStatus.CANDIDATE}
    outcomes = dose_finding.outcome_string(enrollments, verdicts, confirmed)
    current = enrollments[-1].cohort.dose_level.level if enrollments else 1
    people = dose_finding.tite_participants(
        enrollments, verdicts, confirmed=confirmed, undecided=undecided, today=today, window_days=trial.dlt_window_days
    )
    return {
        "as_of": str(today),
        "outcomes": outcomes,
        "current_dose": current,
        "design": trial.escalation_design,
        "pathways": dose_finding.pathways(trial, outcomes, num_doses=num_doses),
        "tite_boin": dose_finding.tite_boin_opinion(trial, people, num_doses=num_doses, current_dose=current),
    }
