"""The follow-up lifecycle that runs by itself: missed visits, completion, lost to follow-up.

* ``follow_up_sweep`` (the beat task ``cohorts.tasks.sweep_trial_follow_up``, per trial): every visit still
  scheduled after the end of its window (the site's date) becomes *missed* with a minor deviation, in one
  transaction per trial, in batches (the number of queries does not grow with the number of visits). The
  DLT-window visits of a closed cohort are locked (``data_lock``): the sweep leaves them as they are.
* ``follow_up_progress_apply`` (the sweep, and every visit recorded by staff): a participant whose schedule is
  done becomes *completed*; after the protocol's number of consecutive missed visits she is *lost to
  follow-up, pending* an investigator's confirmation (a ``LostToFollowUp`` flag); a visit done while she is
  pending dismisses the flag (she came back).
* ``lost_to_follow_up_confirm`` / ``lost_to_follow_up_dismiss``: the investigator's decision.

Automatic changes are made by the named system actor ``system:beat`` with reasons ``automatic: …``.
The lock order is participant, then visit (as in ``visit_complete``), so two sweeps, or a sweep and a
nurse, wait for each other and never both record a visit; the database's unique keys
(``deviation_one_window_per_visit``, ``ltfu_one_pending_per_participant``, the flag's unique
``last_missed_visit``) hold it whatever happens.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from cohorts import rules
from cohorts.models import Cohort, FollowUpVisit, LostToFollowUp, Participant, ProtocolDeviation
from cohorts.services.deviations import deviations_open_by_system
from cohorts.services.participant_lifecycle import (
    FOLLOWED,
    ParticipantTransition,
    participant_transition,
    participants_transition,
)
from core.actors import BEAT, system_actor
from core.cleaning import clean_text
from core.errors import ErrorCode, RuleViolation, require_permission
from core.history import audit, audited_bulk_create, audited_bulk_update, automatic
from reminders import services as reminder_services
from trial.models import Site, Trial

Status = Participant.Status
T = ParticipantTransition
MISSED_REMINDER = "visit-missed"  # reminders.kinds: site staff are told a visit was missed
MISSED_FIELDS = ("status", "missed_reason", "missed_automatically", "recorded_by", "recorded_at")


@dataclass
class SweepReport:
    trial: str
    missed: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"trial": self.trial, "missed": self.missed, "completed": self.completed, "flagged": self.flagged}


def _overdue(sites: dict[int, Site], now: datetime) -> Q:
    """Visits whose window is over at their site now: ``window_end`` < the site's date (``rules.window_over``)."""
    overdue = Q(pk__in=[])
    for site in sites.values():
        today = timezone.localdate(now, timezone=zoneinfo.ZoneInfo(site.time_zone))
        overdue |= Q(participant__site_id=site.pk, window_end__lt=today)
    return overdue


def _missed_reminders(visits: list[FollowUpVisit], by_id: dict, sites: dict[int, Site], trial: Trial, now, actor):
    """The "visit missed" reminder of each visit (site staff), due now, in the sweep's transaction."""
    items = []
    for visit in visits:
        participant = by_id[visit.participant_id]
        site = sites[participant.site_id]
        closed = datetime.combine(
            visit.window_end + timedelta(days=1), time(0), tzinfo=zoneinfo.ZoneInfo(site.time_zone)
        )
        items.append(
            {
                "kind": MISSED_REMINDER,
                "subject": f"visit:{visit.pk}",
                "subject_label": f"{participant.study_id or participant} — {visit.name}",
                "due_at": now,
                "event_at": closed,
                "trial": trial,
                "site": site,
            }
        )
    reminder_services.reminders_schedule_many(items, by=actor)


def follow_up_sweep(*, trial_id: int, now: datetime | None = None) -> SweepReport:
    """Mark every overdue visit of the trial missed (a minor deviation each) and move the participants on.

    Idempotent: a visit is missed once (it is no longer scheduled, and its deviation has a unique key), a
    participant completes once, a streak is flagged once. Safe to run from several workers at once."""
    now = now or timezone.now()
    actor = system_actor(BEAT)
    with transaction.atomic():
        trial = Trial.objects.get(pk=trial_id)
        report = SweepReport(trial=trial.registry_id)
        sites = {site.pk: site for site in trial.sites.all()}
        overdue = _overdue(sites, now)
        # The DLT-window visits of a closed cohort are locked (cohorts.services.data_lock): the sweep leaves them.
        locked = Q(participant__enrollments__cohort__state=Cohort.State.CLOSED) & Q(
            target_date__lte=F("participant__dlt_window_end")
        )
        scheduled = FollowUpVisit.objects.filter(
            participant__trial=trial, status=FollowUpVisit.Status.SCHEDULED
        ).exclude(locked)
        candidates = set(
            scheduled.filter(overdue, participant__status__in=FOLLOWED).values_list("participant_id", flat=True)
        )
        # Participants whose schedule is done but who never moved on (visits recorded before this sweep existed).
        candidates |= set(
            Participant.objects.filter(
                trial=trial, status__in=(Status.INFUSED, Status.IN_FOLLOW_UP), visits__isnull=False
            )
            .exclude(visits__status=FollowUpVisit.Status.SCHEDULED)
            .values_list("pk", flat=True)
        )
        if not candidates:
            return report
        participants = list(
            Participant.objects.select_for_update(of=("self",))
            .select_related("trial")
            .filter(pk__in=candidates, status__in=FOLLOWED)
            .order_by("pk")
        )
        by_id = {p.pk: p for p in participants}
        visits = list(
            FollowUpVisit.objects.select_for_update(of=("self",))
            .filter(overdue, participant__in=participants, status=FollowUpVisit.Status.SCHEDULED)
            .exclude(locked)
            .order_by("pk")
        )
        for visit in visits:
            visit.status = FollowUpVisit.Status.MISSED
            visit.missed_reason = f"Not recorded by the end of its window ({visit.window_end}, site date)."
            visit.missed_automatically = True
            visit.recorded_by = actor
            visit.recorded_at = now
            audit(
                visit,
                by=actor,
                reason=automatic(f"not recorded by the end of its window {visit.window_start} to {visit.window_end}"),
            )
        audited_bulk_update(visits, MISSED_FIELDS)
        deviations_open_by_system(
            [
                {
                    "participant": by_id[visit.participant_id],
                    "category": ProtocolDeviation.Category.VISIT_WINDOW,
                    "severity": ProtocolDeviation.Severity.MINOR,
                    "description": missed_description(visit, why="not recorded by the end of its window"),
                    "occurred_on": visit.window_end,
                    "visit": visit,
                    "infusion_id": visit.infusion_id,
                }
                for visit in visits
            ],
            by=actor,
            reason=automatic("a visit was missed"),
        )
        _missed_reminders(visits, by_id, sites, trial, now, actor)
        report.missed = [v.pk for v in visits]
        moved = follow_up_progress_apply(participants, now=now)
        report.completed, report.flagged = moved["completed"], moved["flagged"]
    return report


def missed_description(visit: FollowUpVisit, *, why: str) -> str:
    return (
        f"{visit.name} missed ({why}): window {visit.window_start} to {visit.window_end} "
        f"(target {visit.target_date}, day {visit.day_offset})."
    )


def follow_up_progress_apply(participants: list[Participant], *, now: datetime | None = None) -> dict[str, list[int]]:
    """Move each locked participant (trial joined) on from her recorded visits, by the system actor:

    * she came back (a visit done) while flagged: the flag is dismissed and she is in follow-up again;
    * ``trial.lost_to_follow_up_missed_visits`` consecutive missed visits: flagged, *lost to follow-up, pending*;
    * otherwise, her schedule done: *completed*;
    * otherwise, infused with a visit recorded: *in follow-up*.
    """
    now = now or timezone.now()
    actor = system_actor(BEAT)
    ids = [p.pk for p in participants]
    facts: dict[int, list[rules.VisitFact]] = defaultdict(list)
    codes: dict[int, str] = {}
    for participant_id, pk, day, status, code in FollowUpVisit.objects.filter(participant_id__in=ids).values_list(
        "participant_id", "pk", "day_offset", "status", "code"
    ):
        facts[participant_id].append(rules.VisitFact(id=pk, day_offset=day, status=status))
        codes[pk] = code
    flags = list(
        LostToFollowUp.objects.filter(participant_id__in=ids).select_related("last_missed_visit").order_by("pk")
    )
    pending = {f.participant_id: f for f in flags if f.state == LostToFollowUp.State.PENDING}
    counted_after: dict[int, int] = {}
    for flag in flags:
        if flag.state == LostToFollowUp.State.DISMISSED:
            day = flag.last_missed_visit.day_offset
            counted_after[flag.participant_id] = max(counted_after.get(flag.participant_id, day), day)

    moves, dismissed, new_flags = [], [], []
    result = {"completed": [], "flagged": [], "dismissed": []}
    for participant in participants:
        after = counted_after.get(participant.pk)
        progress = rules.follow_up_progress(facts[participant.pk], counted_after_day=after)
        steps, why = [], []
        flag = pending.get(participant.pk)
        threshold = participant.trial.lost_to_follow_up_missed_visits
        if participant.status == Status.LOST_TO_FOLLOW_UP_PENDING and flag is not None:
            if rules.lost_to_follow_up_due(progress, threshold=threshold):
                continue  # still missing: the investigator decides
            # A visit of the streak, or one after it, was recorded done: she came back.
            flag.state, flag.decided_by, flag.decided_at = LostToFollowUp.State.DISMISSED, actor, now
            flag.decision_note = automatic("a visit was recorded done: she is followed again")
            dismissed.append(audit(flag, by=actor, reason=flag.decision_note))
            steps.append(T.DISMISS_LOST)
            why.append("a visit was recorded done after the lost-to-follow-up flag")
            result["dismissed"].append(participant.pk)
            status_after = Status.IN_FOLLOW_UP
        elif participant.status in (Status.INFUSED, Status.IN_FOLLOW_UP):
            status_after = participant.status
        else:
            continue
        if not steps and rules.lost_to_follow_up_due(progress, threshold=threshold) and participant.pk not in pending:
            steps.append(T.FLAG_LOST)
            why.append(f"{progress.consecutive_missed} consecutive visits missed (the protocol's limit is {threshold})")
            new_flags.append(
                audit(
                    LostToFollowUp(
                        participant=participant,
                        last_missed_visit_id=progress.last_missed_visit,
                        missed_visits=progress.consecutive_missed,
                        flagged_at=now,
                    ),
                    by=actor,
                    reason=automatic(why[-1]),
                )
            )
            result["flagged"].append(participant.pk)
        elif progress.schedule_done:
            steps.append(T.COMPLETE)
            last = max(facts[participant.pk], key=lambda v: (v.day_offset, v.id))
            why.append(f"her last scheduled visit ({codes[last.id]}) is recorded ({last.status})")
            result["completed"].append(participant.pk)
        elif status_after == Status.INFUSED and any(
            v.status != FollowUpVisit.Status.SCHEDULED for v in facts[participant.pk]
        ):
            steps.append(T.FOLLOW_UP)
            why.append("a visit is recorded")
        if steps:
            moves.append((participant, steps, automatic("; ".join(why))))
    participants_transition(moves, by=actor)
    audited_bulk_update(dismissed, ["state", "decided_by", "decided_at", "decision_note"])
    audited_bulk_create(new_flags)
    return result


def _lock_flag(flag: LostToFollowUp) -> tuple[LostToFollowUp, Participant]:
    participant_id = LostToFollowUp.objects.values_list("participant_id", flat=True).get(pk=flag.pk)
    participant = Participant.objects.select_for_update(of=("self",)).select_related("trial").get(pk=participant_id)
    flag = LostToFollowUp.objects.select_for_update().get(pk=flag.pk)
    if flag.state != LostToFollowUp.State.PENDING:
        raise RuleViolation(
            ErrorCode.LOST_TO_FOLLOW_UP_NOT_PENDING, f"This flag is {flag.get_state_display().lower()} already."
        )
    return flag, participant


def _decide(flag: LostToFollowUp, *, state: str, note: str, by) -> tuple[LostToFollowUp, Participant]:
    require_permission(by, "cohorts.decide_losttofollowup", "confirm or dismiss lost to follow-up")
    note = clean_text(
        note, field="note", label="The note", max_length=2000, required=True, code=ErrorCode.REASON_REQUIRED
    )
    flag, participant = _lock_flag(flag)
    flag.state, flag.decided_by, flag.decided_at, flag.decision_note = state, by, timezone.now(), note
    return flag, participant


def lost_to_follow_up_confirm(*, flag: LostToFollowUp, note: str, by) -> LostToFollowUp:
    """An investigator confirms that the flagged participant is lost to follow-up (what was tried, in ``note``)."""
    with transaction.atomic():
        flag, participant = _decide(flag, state=LostToFollowUp.State.CONFIRMED, note=note, by=by)
        audit(flag, by=by, reason=f"Confirmed: {note}").save()
        participant_transition(
            participant=participant, transition=T.CONFIRM_LOST, by=by, reason=f"Lost to follow-up, confirmed: {note}"
        )
    return flag


def lost_to_follow_up_dismiss(*, flag: LostToFollowUp, note: str, by) -> LostToFollowUp:
    """An investigator dismisses the flag: she is still followed (counting restarts after the flagged streak).
    With no visit left to come she is completed."""
    with transaction.atomic():
        flag, participant = _decide(flag, state=LostToFollowUp.State.DISMISSED, note=note, by=by)
        audit(flag, by=by, reason=f"Dismissed: {note}").save()
        participant_transition(
            participant=participant, transition=T.DISMISS_LOST, by=by, reason=f"Still in follow-up: {note}"
        )
        follow_up_progress_apply([participant])
    return flag
