"""Every write to adverse events, DLT decisions, reporting clocks and the safety stop.

Recording or updating an event evaluates, in the same transaction: DLT candidacy, the expedited
reporting clocks, and the stopping rules (which pause the trial's active cohort at once).
"""

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cohorts.models import ACTIVE_COHORT_STATES, Cohort, Enrollment, Participant
from core.errors import DomainError, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import audit
from safety import dlt, rules
from safety.models import AdverseEvent, ReportingClock, SafetyReview, SignatureFailure, SignOff
from safety.selectors import (
    canonical_json,
    confirmed_dlts_at_dose,
    review_snapshot,
    sha256_hex,
    unrecorded_dlt_window_visits,
)
from trial.models import Trial

AE_FIELDS = (
    "verbatim_term", "ctcae_term", "ctcae_term_text", "onset_date", "resolution_date", "grade", "serious",
    "sae_death", "sae_life_threatening", "sae_hospitalisation", "sae_disability", "sae_congenital_anomaly",
    "sae_other_important", "relationship", "expected", "infusion_reaction", "action_taken", "outcome",
    "site_aware_at",
)  # fmt: skip
SAE_CRITERIA = ("sae_death", "sae_life_threatening", "sae_hospitalisation", "sae_disability",
                "sae_congenital_anomaly", "sae_other_important")  # fmt: skip


_require = require_permission
DEATH_IS_SERIOUS = " (grade 5: serious, results in death, by definition: ICH E2A II.B)"


def _death_is_serious(event: AdverseEvent) -> bool:
    """ICH E2A II.B: an event that results in death is serious. A grade 5 or fatal event is made serious
    with the death criterion whatever the form said (True when this changed it). The service sets rather
    than refuses: no answer could make a death non-serious, and the sponsor's 24-hour clock is running."""
    if event.grade != 5 and event.outcome != AdverseEvent.Outcome.FATAL:
        return False
    changed = not (event.serious and event.sae_death)
    event.serious, event.sae_death = True, True
    return changed


def _validate(event: AdverseEvent) -> None:
    """Refuse bad input with a clear message before anything is written."""
    problems: dict[str, list[str]] = {}
    for name in ("verbatim_term", "ctcae_term_text"):  # PostgreSQL refuses NUL: a clear 400, not a 500
        if "\x00" in (getattr(event, name) or ""):
            problems[name] = ["Text cannot contain NUL characters."]
    if not isinstance(event.grade, int) or not 1 <= event.grade <= 5:
        problems["grade"] = [f"CTCAE grade must be 1 to 5, not {event.grade!r}."]
    if event.relationship not in AdverseEvent.Relationship.values:
        problems["relationship"] = [
            f"Relationship must be one of {', '.join(AdverseEvent.Relationship.values)}, not {event.relationship!r}."
        ]
    if event.resolution_date and event.onset_date and event.resolution_date < event.onset_date:
        problems["resolution_date"] = ["The event cannot resolve before its onset."]
    if event.serious and not any(getattr(event, name) for name in SAE_CRITERIA):
        problems["serious"] = ["A serious event needs at least one seriousness criterion (ICH E2A)."]
    if not event.serious and any(getattr(event, name) for name in SAE_CRITERIA):
        problems["serious"] = ["A seriousness criterion is ticked: mark the event serious."]
    if event.grade == 5 and event.outcome != AdverseEvent.Outcome.FATAL:
        problems["outcome"] = ["A grade 5 event is fatal: set the outcome to fatal."]
    if event.outcome == AdverseEvent.Outcome.FATAL and event.grade != 5:
        problems["grade"] = ["A fatal outcome is grade 5."]
    if event.sae_death and event.grade != 5:
        problems["sae_death"] = ["'Results in death' is the criterion of a fatal (grade 5) event; for another "
                                 "grade choose the criterion that applies."]  # fmt: skip
    if event.site_aware_at and event.site_aware_at > timezone.now():
        problems["site_aware_at"] = ["Awareness cannot be in the future."]
    if not event.ctcae_term_id and not (event.ctcae_term_text or "").strip():
        problems["ctcae_term"] = ["Choose a CTCAE term or write it as free text."]
    if problems:
        raise InvalidInput("invalid", " ".join(m for ms in problems.values() for m in ms), problems)
    try:
        event.full_clean(exclude=["participant", "reported_by", "worst_grade"])
    except ValidationError as exc:
        raise InvalidInput("invalid", "The adverse event is not valid.", exc.message_dict) from None
    participant = event.participant
    zone = zoneinfo.ZoneInfo(participant.site.time_zone)
    first_consent = participant.consents.order_by("signed_at").first()
    if first_consent is None:
        raise RuleViolation("no_consent", f"{participant} has no signed consent: no study adverse event yet.")
    consented_on = timezone.localdate(first_consent.signed_at, timezone=zone)
    today = timezone.localdate(timezone=zone)
    if event.onset_date > today or (event.resolution_date and event.resolution_date > today):
        raise InvalidInput("date_in_future", "Onset and resolution cannot be after today (site time).",
                           {"onset_date": ["In the future."]})  # fmt: skip
    if event.onset_date < consented_on:
        raise InvalidInput(
            "onset_before_consent",
            f"Onset {event.onset_date} is before consent ({consented_on}): a pre-consent condition is medical "
            "history, not an adverse event.",
            {"onset_date": ["Before consent."]},
        )


def _assess_dlt(event: AdverseEvent) -> None:
    """Candidate status from the protocol's DLT definition; an investigator's decision is kept."""
    if event.dlt_status in (AdverseEvent.DltStatus.CONFIRMED, AdverseEvent.DltStatus.REJECTED):
        return
    trial = event.participant.trial
    verdict = dlt.dlt_candidacy(
        grade=event.worst_grade, relationship=event.relationship, onset=event.onset_date,
        infusion_reaction=event.infusion_reaction, window_start=event.participant.dlt_window_start,
        window_end=event.participant.dlt_window_end, min_grade=trial.dlt_min_grade,
        min_relationship=trial.dlt_min_relationship,
    )  # fmt: skip
    event.dlt_status = AdverseEvent.DltStatus.CANDIDATE if verdict.candidate else AdverseEvent.DltStatus.NOT_CANDIDATE
    event.dlt_reason = verdict.reason


def _start_clocks(event: AdverseEvent, *, known_at: datetime, by) -> list[ReportingClock]:
    """Start each clock that applies and has not started (the unique key (event, kind) decides; a re-save
    starts nothing new). ``known_at`` is when the facts that make a new clock apply became known: the
    awareness for a new event, the information's receipt for a follow-up (ICH E2A III.A: "after first
    knowledge ... that a case qualifies")."""
    started = []
    existing = set(ReportingClock.objects.filter(adverse_event=event).values_list("kind", flat=True))
    for due in dlt.reporting_clocks(
        serious=event.serious, relationship=event.relationship, expected=event.expected,
        fatal_or_life_threatening=event.fatal_or_life_threatening, known_at=known_at,
        site_time_zone=event.participant.site.time_zone,
    ):  # fmt: skip
        if due.kind in existing:
            continue
        clock = ReportingClock(adverse_event=event, kind=due.kind, started_at=due.started_at, due_at=due.due_at,
                               recipient=due.recipient)  # fmt: skip
        audit(clock, by=by, reason="Expedited-reporting clock started").save()
        started.append(clock)
    return started


def _is_related_death(grade: int, relationship: str) -> bool:
    return grade == 5 and dlt.related_at_least(relationship, "possible")


def _apply_stopping_rules(
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
        dose_level=dose_cohort.dose_level.level, stop_on_related_death=trial.stop_on_related_death,
        dlt_stop_count=trial.dlt_stop_count,
    )  # fmt: skip
    if not verdict.stop or cohort.state == Cohort.State.PAUSED:
        return None
    cohort.state_before_pause = cohort.state
    cohort.state = Cohort.State.PAUSED
    audit(cohort, by=by, reason=f"Stopping rule: {verdict.reason} Enrollment and infusion paused.").save()
    review_open_unscheduled(cohort=cohort, reason=f"Stopping rule met: {verdict.reason}", by=by)
    return cohort


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(AE_FIELDS))
    if unknown:
        raise InvalidInput(
            "unknown_fields", f"Unknown fields: {', '.join(unknown)}.", {k: ["Unknown."] for k in unknown}
        )
    return dict(values)


def adverse_event_record(*, participant: Participant, values: Mapping[str, Any], by) -> AdverseEvent:
    """Record a new adverse event; DLT candidacy, clocks and stopping rules in the same transaction."""
    _require(by, "safety.add_adverseevent", "record adverse events")
    values = _coerce(values)
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",)).select_related("trial", "site").get(pk=participant.pk)
        )
        event = AdverseEvent(participant=participant, reported_by=by, **values)
        event.site_aware_at = event.site_aware_at or timezone.now()
        event.information_received_at = event.site_aware_at
        made_serious = _death_is_serious(event)
        _validate(event)
        event.worst_grade = event.grade
        _assess_dlt(event)
        reason = "Adverse event reported" + (DEATH_IS_SERIOUS if made_serious else "")
        audit(event, by=by, reason=reason).save()
        _start_clocks(event, known_at=event.site_aware_at, by=by)
        _apply_stopping_rules(event, by=by, new_related_death=_is_related_death(event.grade, event.relationship))
    return event


def adverse_event_update(
    *, event: AdverseEvent, values: Mapping[str, Any], reason: str, by, information_received_at: datetime | None = None
) -> AdverseEvent:
    """A follow-up: update the event (history kept), keep the worst grade, re-assess DLT, clocks, stops.

    ``information_received_at`` (default: now) is when the site received this follow-up's information; a
    clock it starts (the event became serious, a SUSAR, fatal or life-threatening) counts from then."""
    _require(by, "safety.change_adverseevent", "update adverse events")
    if not reason.strip():
        raise InvalidInput("reason_required", "Give the reason for this follow-up.", {"reason": ["Required."]})
    values = _coerce(values)
    now = timezone.now()
    received = now if information_received_at is None else information_received_at
    if not isinstance(received, datetime) or received.tzinfo is None:
        raise InvalidInput("invalid_time", "When the information was received must be a date and time with its "
                           "time zone.", {"information_received_at": ["Invalid."]})  # fmt: skip
    if received > now:
        raise InvalidInput("invalid_time", "The information cannot be received in the future.",
                           {"information_received_at": ["In the future."]})  # fmt: skip
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",))
            .select_related("participant__trial", "participant__site")
            .get(pk=event.pk)
        )
        was_related_death = _is_related_death(event.grade, event.relationship)
        for name, value in values.items():
            setattr(event, name, value)
        if received < event.site_aware_at:
            raise InvalidInput("invalid_time", "The follow-up information cannot precede the first awareness of "
                               "the event.", {"information_received_at": ["Before awareness."]})  # fmt: skip
        event.information_received_at = received
        made_serious = _death_is_serious(event)
        _validate(event)
        event.worst_grade = max(event.worst_grade, event.grade)
        _assess_dlt(event)
        audit(event, by=by, reason=reason + (DEATH_IS_SERIOUS if made_serious else "")).save()
        _start_clocks(event, known_at=received, by=by)
        _apply_stopping_rules(
            event, by=by, new_related_death=not was_related_death and _is_related_death(event.grade, event.relationship)
        )
    return event


def dlt_decide(*, event: AdverseEvent, confirm: bool, reason: str, by) -> AdverseEvent:
    """An investigator confirms or rejects a DLT candidate, with a reason; confirmed DLTs feed escalation."""
    _require(by, "safety.decide_dlt", "confirm or reject DLTs (investigators only)")
    if not reason.strip():
        raise InvalidInput("reason_required", "Give the reason for the DLT decision.", {"reason": ["Required."]})
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__trial").get(pk=event.pk)
        )
        if event.dlt_status != AdverseEvent.DltStatus.CANDIDATE:
            raise RuleViolation("not_a_dlt_candidate", f"This event is {event.get_dlt_status_display().lower()}.")
        event.dlt_status = AdverseEvent.DltStatus.CONFIRMED if confirm else AdverseEvent.DltStatus.REJECTED
        event.dlt_reason = reason
        event.dlt_decided_by = by
        event.dlt_decided_at = timezone.now()
        audit(event, by=by, reason=f"DLT {'confirmed' if confirm else 'rejected'}: {reason}").save()
        if confirm:
            _apply_stopping_rules(event, by=by, new_confirmed_dlt=True)
    return event


def clock_complete(*, clock: ReportingClock, done_at: datetime, reported_to: str, by) -> ReportingClock:
    _require(by, "safety.change_reportingclock", "record expedited reports")
    if not reported_to.strip():
        raise InvalidInput("recipient_required", "Say to whom it was reported.", {"reported_to": ["Required."]})
    if "\x00" in reported_to or len(reported_to) > 200:
        raise InvalidInput("invalid", "The recipient must be plain text of at most 200 characters.",
                           {"reported_to": ["Invalid."]})  # fmt: skip
    with transaction.atomic():
        clock = ReportingClock.objects.select_for_update().get(pk=clock.pk)
        if clock.done_at:
            raise RuleViolation("already_reported", f"Already reported at {clock.done_at:%Y-%m-%d %H:%M}.")
        if done_at < clock.started_at or done_at > timezone.now():
            raise InvalidInput("invalid_time", "The report time must lie between awareness and now.")
        clock.done_at, clock.done_by, clock.reported_to = done_at, by, reported_to
        audit(clock, by=by, reason=f"Reported to {reported_to}").save()
    return clock


# --- safety reviews, Part 11 sign-off and the escalation gate -----------------------------------

SIGNING_LOCKOUT_FAILURES = 5
SIGNING_LOCKOUT_MINUTES = 30


def _new_review(*, cohort: Cohort, kind: str, reason: str, by) -> SafetyReview:
    snapshot = review_snapshot(cohort)
    review = SafetyReview(
        trial=cohort.trial, cohort=cohort, kind=kind, reason=reason, opened_at=timezone.now(), opened_by=by,
        snapshot=snapshot, snapshot_digest=sha256_hex(canonical_json(snapshot)),
    )  # fmt: skip
    audit(review, by=by, reason=f"Safety review opened: {reason}").save()
    return review


def _withdraw_open_reviews(cohort: Cohort, *, by, reason: str) -> None:
    for stale in SafetyReview.objects.select_for_update().filter(cohort=cohort, state=SafetyReview.State.OPEN):
        stale.state = SafetyReview.State.WITHDRAWN
        audit(stale, by=by, reason=reason).save()


def review_open_scheduled(*, cohort: Cohort, by=None) -> SafetyReview:
    """Open the review of a cohort whose participants all completed the DLT window (cohort → in review)."""
    from cohorts.selectors import dlt_windows_complete

    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state != Cohort.State.OBSERVING:
            raise RuleViolation("cohort_not_observing", f"{cohort} is {cohort.get_state_display().lower()}.")
        if not dlt_windows_complete(cohort):
            raise RuleViolation("dlt_windows_running", f"DLT windows of {cohort} are still running.")
        if SafetyReview.objects.filter(cohort=cohort, state=SafetyReview.State.OPEN).exists():
            raise RuleViolation("review_already_open", f"{cohort} already has an open review (called by the chair).")
        cohort.state = Cohort.State.IN_REVIEW
        audit(cohort, by=by, reason="Every participant completed the DLT window: safety review opened").save()
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.SCHEDULED, reason="DLT windows complete", by=by)


def reviews_open_due(*, by=None) -> list[SafetyReview]:
    """Open the scheduled review of every observing cohort whose DLT windows are complete (beat task)."""
    from cohorts.selectors import dlt_windows_complete

    opened = []
    for cohort in Cohort.objects.filter(state=Cohort.State.OBSERVING).select_related("trial", "dose_level"):
        if dlt_windows_complete(cohort):
            try:
                opened.append(review_open_scheduled(cohort=cohort, by=by))
            except DomainError:
                continue  # another worker opened it first, or the chair's review is open: next cohort
    return opened


def review_open_unscheduled(*, cohort: Cohort, reason: str, by) -> SafetyReview:
    """A stopping rule opens a fresh review; any open review's snapshot is stale and is withdrawn."""
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        _withdraw_open_reviews(cohort, by=by, reason="Superseded: a stopping rule opened an unscheduled review")
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.UNSCHEDULED, reason=reason, by=by)


def review_open_by_chair(*, cohort: Cohort, reason: str, by) -> SafetyReview:
    if not _is_chair(by):
        raise PermissionDenied("permission_denied", "Only the committee chair can call a safety review.")
    if not reason.strip():
        raise InvalidInput("reason_required", "Say why the review is called.", {"reason": ["Required."]})
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=cohort.pk)
        if cohort.state in (Cohort.State.PLANNED, Cohort.State.CLOSED):
            raise RuleViolation("cohort_not_active", f"{cohort} is {cohort.get_state_display().lower()}.")
        _withdraw_open_reviews(cohort, by=by, reason="Superseded by a review the chair called")
        return _new_review(cohort=cohort, kind=SafetyReview.Kind.CHAIR, reason=reason, by=by)


def protocol_recommendation(review: SafetyReview) -> str:
    """The decision the protocol's design recommends, read from the snapshot (3+3 for NCT06949137)."""
    design = review.snapshot["design"]
    rec = review.snapshot["recommendations"].get(design) or {}
    current = review.snapshot["cohort"]["dose_level"]
    dose, goes_on = rec.get("recommended_dose"), rec.get("continue")
    if dose is None:
        return SafetyReview.Decision.STOP
    if not goes_on:
        return SafetyReview.Decision.MTD
    if dose > current:
        return SafetyReview.Decision.ESCALATE
    if dose < current:
        return SafetyReview.Decision.DEESCALATE
    return SafetyReview.Decision.EXPAND


def review_mtd_selection(review: SafetyReview) -> dict:
    """The protocol design's MTD selection over the review's frozen data (a dict of
    ``rules.MtdSelection.to_dict()`` plus its ``statement``)."""
    design = review.snapshot["design"]
    frozen = review.snapshot.get("mtd_selection", {}).get(design)
    if frozen is not None:
        return frozen
    # A snapshot frozen before MTD selections were recorded: the same pure rule over its outcome string.
    selection = rules.select_mtd(design, review.snapshot["outcomes"], num_doses=len(review.snapshot["dose_levels"]),
                                 target=float(review.trial.boin_target_rate))  # fmt: skip
    return selection.to_dict() | {"statement": selection.statement}


# Decisions that keep the trial going (or end escalation with an MTD): they wait for every overdue
# DLT-window visit to be recorded or addressed by the rationale. Stopping the trial never waits.
DECISIONS_NEEDING_VISITS = ("escalate", "expand", "deescalate", "resume", "mtd")


def _overdue_visits(review: SafetyReview) -> list:
    return [v for v in unrecorded_dlt_window_visits(review.trial) if v.status == v.Status.SCHEDULED]


def _visit_label(visit) -> str:
    return f"{visit.participant.study_id or visit.participant} {visit.code} (window closed {visit.window_end})"


def _check_visits_recorded(review: SafetyReview, decision: str, acknowledged: list[int]) -> None:
    if decision not in DECISIONS_NEEDING_VISITS:
        return
    missing = [v for v in _overdue_visits(review) if v.pk not in acknowledged]
    if missing:
        raise RuleViolation(
            "visits_unrecorded",
            f"{len(missing)} safety visit(s) in a DLT window are overdue and unrecorded: "
            f"{', '.join(_visit_label(v) for v in missing)}. Record each (done, or missed with the reason), or "
            "let the rationale address them (acknowledge_visits), before this decision can take effect.",
            {"acknowledge_visits": [_visit_label(v) for v in missing]},
        )


def _check_snapshot_current(review: SafetyReview) -> None:
    """The committee signs what it saw; if the safety data changed since (a new DLT candidate, a DLT
    confirmed or rejected), the snapshot is stale and no decision on it may be signed or take effect."""
    live_candidates = AdverseEvent.objects.filter(
        participant__trial=review.trial, dlt_status=AdverseEvent.DltStatus.CANDIDATE
    ).exists()
    if live_candidates:
        raise RuleViolation("dlt_pending", "A DLT candidate awaits an investigator's decision: no decision can be "
                            "signed until it is decided and a new review shows it.")  # fmt: skip
    current = review_snapshot(review.cohort)
    seen = {d["dose_level"]: d["dlts"] for d in review.snapshot["dose_levels"]}
    now = {d["dose_level"]: d["dlts"] for d in current["dose_levels"]}
    if seen != now:
        raise RuleViolation("snapshot_stale", "DLTs changed since this review opened: the committee must review "
                            "the current data in a new review.")  # fmt: skip


def _check_decision_possible(review: SafetyReview, decision: str, *, acknowledged: list[int] | None = None) -> None:
    from cohorts.selectors import dlt_windows_complete

    cohort = review.cohort
    _check_visits_recorded(review, decision, review.acknowledged_visits if acknowledged is None else acknowledged)
    levels = set(review.trial.dose_levels.values_list("level", flat=True))
    level = cohort.dose_level.level
    if review.snapshot["adverse_events"]["pending_dlt_candidates"]:
        raise RuleViolation("dlt_pending", "Investigators must first confirm or reject every DLT candidate; "
                            "then open a new review with the decided data.")  # fmt: skip
    _check_snapshot_current(review)
    if decision == SafetyReview.Decision.ESCALATE and level + 1 not in levels:
        raise RuleViolation("no_higher_dose", f"Dose level {level} is the highest: no escalation.")
    target = {SafetyReview.Decision.ESCALATE: level + 1, SafetyReview.Decision.EXPAND: level,
              SafetyReview.Decision.DEESCALATE: level - 1}.get(decision)  # fmt: skip
    if target in levels:
        # Places already given to the dose: every cohort's capacity there, replaced participants aside.
        capacity = sum(review.trial.cohorts.filter(dose_level__level=target).values_list("capacity", flat=True))
        replaced = Enrollment.objects.filter(
            trial=review.trial, cohort__dose_level__level=target, participant__replaced=True
        ).count()
        allocated = capacity - replaced
        if allocated + review.trial.cohort_size > review.trial.max_per_dose_level:
            raise RuleViolation(
                "dose_level_full",
                f"Dose level {target} already has {allocated} places; another cohort of "
                f"{review.trial.cohort_size} would exceed the protocol's {review.trial.max_per_dose_level}.",
            )
    if target is not None and not dlt_windows_complete(cohort):
        # Safety rule 1: no cohort opens while any participant of the reviewed one is inside the DLT window.
        raise RuleViolation("dlt_windows_running", f"Every DLT window of {cohort} must be complete first.")
    if decision == SafetyReview.Decision.DEESCALATE and level - 1 not in levels:
        raise RuleViolation("no_lower_dose", f"Dose level {level} is the lowest: no de-escalation.")
    if decision == SafetyReview.Decision.RESUME and cohort.state != Cohort.State.PAUSED:
        raise RuleViolation("not_paused", f"{cohort} is not paused.")


def review_propose(
    *,
    review: SafetyReview,
    decision: str,
    rationale: str = "",
    mtd_level: int | None = None,
    acknowledge_visits: bool = False,
    by,
) -> SafetyReview:
    """Set the decision to be signed. Only before the first signature.

    A decision that differs from the protocol's recommendation needs a rationale. With ``mtd``, the
    review records the design's MTD selection over the frozen data; ``mtd_level`` declares another
    dose instead: only a treated one, only with a rationale, and the review shows the departure.
    ``acknowledge_visits`` says that the rationale addresses the overdue DLT-window visits listed on
    the review; without it, a decision other than stop waits until they are recorded.
    """
    _require(by, "safety.sign_review", "propose review decisions (committee members only)")
    if decision not in SafetyReview.Decision.values:
        raise InvalidInput("invalid_decision", f"Decision must be one of {', '.join(SafetyReview.Decision.values)}.",
                           {"decision": ["Unknown decision."]})  # fmt: skip
    if mtd_level is not None and (isinstance(mtd_level, bool) or not isinstance(mtd_level, int)):
        raise InvalidInput("invalid", "The MTD is a dose level number.", {"mtd_level": ["Not a dose level."]})
    if mtd_level is not None and decision != SafetyReview.Decision.MTD:
        raise InvalidInput("mtd_level_without_mtd", "A dose level for the MTD goes only with the decision 'mtd'.",
                           {"mtd_level": ["Only with decision mtd."]})  # fmt: skip
    with transaction.atomic():
        review = (
            SafetyReview.objects.select_for_update(of=("self",))
            .select_related("cohort__dose_level", "trial")
            .get(pk=review.pk)
        )
        if review.state != SafetyReview.State.OPEN:
            raise RuleViolation("review_closed", f"This review is {review.get_state_display().lower()}: a "
                                "correction is a new review.")  # fmt: skip
        if review.signatures.exists():
            raise RuleViolation("review_signed", "The review is already signed: its decision cannot change.")
        acknowledged = [v.pk for v in _overdue_visits(review)] if acknowledge_visits else []
        if acknowledged and not rationale.strip():
            raise InvalidInput(
                "rationale_required", "Say in the rationale how the committee weighed the overdue safety visits.",
                {"rationale": ["Required when overdue visits are acknowledged."]},
            )  # fmt: skip
        _check_decision_possible(review, decision, acknowledged=acknowledged)
        recommended = protocol_recommendation(review)
        if decision != recommended and not rationale.strip():
            raise InvalidInput(
                "rationale_required",
                f"The protocol's design recommends '{recommended}': explain why the committee decides '{decision}'.",
                {"rationale": ["Required when the decision differs from the recommendation."]},
            )
        if mtd_level is not None:
            _check_declared_mtd(review, mtd_level, rationale)
        review.decision, review.rationale = decision, rationale
        review.declared_mtd_level = mtd_level
        review.acknowledged_visits = acknowledged
        review.proposed_by, review.proposed_at = by, timezone.now()
        what = f"{decision} (MTD declared: dose {mtd_level})" if mtd_level is not None else decision
        audit(review, by=by, reason=f"Decision proposed: {what}").save()
    return review


def _check_declared_mtd(review: SafetyReview, level: int, rationale: str) -> None:
    treated = {d["dose_level"]: d["treated"] for d in review.snapshot["dose_levels"]}
    if level not in treated:
        raise InvalidInput("invalid", f"Dose level {level} is not a dose level of this trial.",
                           {"mtd_level": ["Unknown dose level."]})  # fmt: skip
    if not treated[level]:
        raise RuleViolation("mtd_not_treated", f"Nobody was treated at dose level {level}: the MTD must be a dose "
                            "that was given.", {"mtd_level": ["Not treated."]})  # fmt: skip
    selection = review_mtd_selection(review)
    if level != selection["dose"] and not rationale.strip():
        raise InvalidInput(
            "rationale_required",
            f"The design's MTD selection is: {selection['statement']}. Explain why the committee declares dose "
            f"{level}.", {"rationale": ["Required when the MTD departs from the design's selection."]},
        )  # fmt: skip


def signature_digest(*, review_id: int, snapshot_digest: str, decision: str, signer_id: int, signer_name: str,
                     meaning: str, signed_at, previous: str, mtd_level: int | None = None) -> str:  # fmt: skip
    """SHA-256 over what was signed: the review's snapshot, the decision (with the MTD dose the
    committee declared, if any), the signer, the meaning, the time and the previous signature of the
    trial (a chain: changing any earlier row breaks it)."""
    signed = {"review": review_id, "snapshot": snapshot_digest, "decision": decision, "signer": signer_id,
              "signer_name": signer_name, "meaning": meaning, "signed_at": signed_at.isoformat(),
              "previous": previous}  # fmt: skip
    if mtd_level is not None:  # absent for every other signature, so earlier digests stay valid
        signed["mtd_level"] = mtd_level
    return sha256_hex(canonical_json(signed))


def _signing_locked(user) -> bool:
    since = timezone.now() - timezone.timedelta(minutes=SIGNING_LOCKOUT_MINUTES)
    return SignatureFailure.objects.filter(user=user, at__gte=since).count() >= SIGNING_LOCKOUT_FAILURES


def review_sign(*, review: SafetyReview, user, password: str, meaning: str, comment: str = "") -> SignOff:
    """A committee member signs by re-entering the password (Part 11 §11.200); never by a token alone.

    At quorum (the chair among the signers) and with no rejection the decision takes effect in the
    same transaction. A wrong password is refused, logged and counts toward a lockout.
    """
    _require(user, "safety.sign_review", "sign safety reviews (committee members only)")
    if meaning not in SignOff.Meaning.values:
        raise InvalidInput("invalid_meaning", "The meaning of a signature is approve or reject.",
                           {"meaning": ["approve or reject"]})  # fmt: skip
    if _signing_locked(user):
        raise PermissionDenied("signing_locked", f"Too many wrong passwords: signing is locked for "
                               f"{SIGNING_LOCKOUT_MINUTES} minutes. Contact the administrator.")  # fmt: skip
    if not password or not user.check_password(password):
        SignatureFailure.objects.create(user=user, review=review, at=timezone.now())  # kept: outside the signing txn
        raise PermissionDenied("wrong_password", "The password is not correct: nothing was signed.",
                               {"password": ["Incorrect."]})  # fmt: skip
    full_name = user.get_full_name().strip()
    if not full_name:
        raise RuleViolation("signer_name_missing", "Your account has no full name: a signature must show it.")
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=review.trial_id)  # serialises the trial's signature chain
        # Lock order trial → cohort → review, as the stopping rule's participant → cohort → review.
        list(Cohort.objects.select_for_update(of=("self",)).filter(pk=review.cohort_id).values_list("pk", flat=True))
        review = (
            SafetyReview.objects.select_for_update(of=("self",)).select_related("cohort__dose_level").get(pk=review.pk)
        )
        if review.state != SafetyReview.State.OPEN:
            raise RuleViolation("review_closed", f"This review is {review.get_state_display().lower()}.")
        if not review.decision:
            raise RuleViolation("no_decision", "There is no proposed decision to sign yet.")
        if sha256_hex(canonical_json(review.snapshot)) != review.snapshot_digest:
            raise RuleViolation("snapshot_tampered", "The review's data no longer matches what was opened: "
                                "it cannot be signed. Open a new review.")  # fmt: skip
        if review.signatures.filter(signer=user).exists():
            raise RuleViolation("already_signed", "You have already signed this review.")
        _check_snapshot_current(review)
        last = SignOff.objects.filter(trial=trial).order_by("-sequence").first()
        signed_at = timezone.now()
        previous = last.digest if last else ""
        signature = SignOff.objects.create(
            trial=trial, review=review, sequence=(last.sequence + 1) if last else 1, signer=user,
            signer_full_name=full_name, meaning=meaning, decision=review.decision,
            mtd_level=review.declared_mtd_level, comment=comment, signed_at=signed_at, previous_digest=previous,
            digest=signature_digest(review_id=review.pk, snapshot_digest=review.snapshot_digest,
                                    decision=review.decision, signer_id=user.pk, signer_name=full_name,
                                    meaning=meaning, signed_at=signed_at, previous=previous,
                                    mtd_level=review.declared_mtd_level),
        )  # fmt: skip
        if meaning == SignOff.Meaning.REJECT:
            review.state = SafetyReview.State.REJECTED
            review.decided_at = signed_at
            audit(review, by=user, reason=f"Rejected by {full_name}: the decision does not take effect").save()
        elif _quorum_reached(review, trial):
            _make_effective(review, by=user)
    return signature


def _is_chair(user) -> bool:
    """The chair holds safety.chair_review as a permission of their own (not through a group, nor as a
    superuser): the database's gate trigger checks exactly this."""
    return user.user_permissions.filter(content_type__app_label="safety", codename="chair_review").exists()


def _quorum_reached(review: SafetyReview, trial: Trial) -> bool:
    approvals = list(review.signatures.select_related("signer").filter(meaning=SignOff.Meaning.APPROVE))
    if review.signatures.filter(meaning=SignOff.Meaning.REJECT).exists():
        return False
    chair_signed = any(_is_chair(s.signer) for s in approvals)
    return len(approvals) >= trial.review_quorum and chair_signed


def _make_effective(review: SafetyReview, *, by) -> None:
    """The gate: in one transaction the cohort closes with its decision and the next one opens."""
    from cohorts.services import _open_cohort

    _check_decision_possible(review, review.decision)
    cohort = (
        Cohort.objects.select_for_update(of=("self",)).select_related("trial", "dose_level").get(pk=review.cohort_id)
    )
    trial = Trial.objects.select_for_update().get(pk=review.trial_id)
    now = timezone.now()
    Decision = SafetyReview.Decision
    if review.decision == Decision.RESUME:
        cohort.state, cohort.state_before_pause = cohort.state_before_pause or Cohort.State.OPEN, ""
        audit(cohort, by=by, reason=f"Resumed by safety review {review.pk}").save()
    else:
        cohort.state, cohort.closed_at, cohort.decision = Cohort.State.CLOSED, now, review.decision
        cohort.state_before_pause = ""  # a paused cohort closed by stop / de-escalate is no longer paused
        audit(cohort, by=by, reason=f"Closed by safety review {review.pk}: {review.get_decision_display()}").save()
    level = cohort.dose_level.level
    target = {Decision.ESCALATE: level + 1, Decision.EXPAND: level, Decision.DEESCALATE: level - 1}.get(review.decision)
    if target is not None:
        dose = trial.dose_levels.get(level=target)
        review.resulting_cohort = _open_cohort(
            trial=trial, dose_level=dose, by=by,
            reason=f"Opened by the effective decision of safety review {review.pk} ({review.decision})",
        )  # fmt: skip
    if review.decision == Decision.STOP:
        trial.status = Trial.Status.STOPPED
        audit(trial, by=by, reason=f"Stopped by safety review {review.pk}").save()
    if review.decision == Decision.MTD:
        _record_mtd(review, trial)
        trial.status = Trial.Status.COMPLETED
        audit(trial, by=by, reason=f"Escalation ended by safety review {review.pk}: {review.mtd_statement}").save()
    review.state, review.decided_at = SafetyReview.State.EFFECTIVE, now
    audit(review, by=by, reason="Quorum reached with the chair and no rejection: decision effective").save()


def _record_mtd(review: SafetyReview, trial: Trial) -> None:
    """The MTD a review records: the design's selection over the frozen data, or the treated dose the
    committee declared with its rationale (shown as a departure). Never the recommended next dose."""
    selection = review_mtd_selection(review)
    design = "3+3" if review.snapshot["design"] == "3+3" else "BOIN"
    level = review.declared_mtd_level if review.declared_mtd_level is not None else selection["dose"]
    review.mtd_departs_from_rule = level != selection["dose"]
    if level is None:
        review.mtd_dose_level = None
        statement = selection["statement"]
        if selection.get("highest_cleared"):
            cleared = trial.dose_levels.get(level=selection["highest_cleared"])
            statement += f" ({cleared.label}, {cleared.cells_display} cells)"
        review.mtd_statement = statement
        return
    dose = trial.dose_levels.get(level=level)
    review.mtd_dose_level = dose
    review.mtd_statement = f"MTD: dose {level} ({dose.label}, {dose.cells_display} cells)"
    if review.mtd_departs_from_rule:
        review.mtd_statement += f"; declared by the committee, departing from the {design} selection " \
                                f"({selection['statement']})"


def verify_signatures(*, trial: Trial | None = None) -> list[str]:
    """Recompute every signature's digest and the chain; return the problems found (empty: intact)."""
    problems = []
    trials = [trial] if trial else list(Trial.objects.order_by("registry_id"))
    for current in trials:
        previous = ""
        for signature in SignOff.objects.filter(trial=current).select_related("review").order_by("sequence"):
            review = signature.review
            where = f"{current.registry_id} signature #{signature.sequence} ({signature.signer_full_name})"
            if sha256_hex(canonical_json(review.snapshot)) != review.snapshot_digest:
                problems.append(f"{where}: review {review.pk}'s snapshot was changed after it was opened")
            if signature.previous_digest != previous:
                problems.append(f"{where}: the chain breaks here (previous digest does not match)")
            expected = signature_digest(
                review_id=review.pk, snapshot_digest=review.snapshot_digest, decision=signature.decision,
                signer_id=signature.signer_id, signer_name=signature.signer_full_name, meaning=signature.meaning,
                signed_at=signature.signed_at, previous=signature.previous_digest, mtd_level=signature.mtd_level,
            )  # fmt: skip
            if expected != signature.digest:
                problems.append(f"{where}: the digest does not match what was signed")
            if signature.decision != review.decision:
                problems.append(f"{where}: signed decision '{signature.decision}' differs from the review's")
            if signature.mtd_level != review.declared_mtd_level:
                problems.append(f"{where}: signed MTD dose {signature.mtd_level} differs from the review's")
            previous = signature.digest
    return problems
