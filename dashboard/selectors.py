"""What the dashboard draws for one trial, read in a constant number of queries whatever its size.

The cohort table reuses ``safety.selectors.trial_summary`` (the API's trial summary) so that the page
and the API can never disagree; the rest are plain rows for the plots in ``dashboard.svg``. Nothing
here carries a direct identifier or a staff username: participants are known by study ID, signers by
the printed name of their signature (21 CFR 11.50), which the API shows every reader too.
"""

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import QuerySet
from django.utils import timezone

from api.permissions import is_sponsor
from cohorts.models import Cohort, Enrollment, FollowUpVisit, Infusion
from core.free_text import free_text_released
from exports.permissions import WITHHELD
from safety import selectors as safety_selectors
from safety import services as safety_services
from safety.models import AdverseEvent, ReportingClock, SafetyReview
from trial.access import scope_records
from trial.models import Trial

GRADES = (1, 2, 3, 4, 5)


def site_zone(trial: Trial) -> zoneinfo.ZoneInfo:
    site = trial.sites.order_by("pk").first()
    return zoneinfo.ZoneInfo(site.time_zone if site else "UTC")


def ae_term(event: AdverseEvent, *, text_shown: bool = True) -> str:
    """The CTCAE term, else the free-text CTCAE term, else the verbatim term (as the review snapshot); typed
    text only when ``text_shown`` (for a sponsor: released by a data manager, ``core.free_text``)."""
    if event.ctcae_term:
        return event.ctcae_term.term
    return (event.ctcae_term_text or event.verbatim_term) if text_shown else WITHHELD


@dataclass(frozen=True)
class CohortRow:
    cohort: int
    sequence: int
    dose_level: int
    dose_label: str
    cells_display: str
    state: str
    state_display: str
    capacity: int
    enrolled: int
    infused: int
    in_dlt_window: int
    evaluable: int
    dlts: int
    dlt_candidates: int
    serious_adverse_events: int
    next_review: str


@dataclass(frozen=True)
class AeMark:
    on: date
    grade: int
    term: str
    serious: bool
    dlt_status: str  # an AdverseEvent.DltStatus value


@dataclass(frozen=True)
class VisitMark:
    on: date
    code: str
    status: str  # done | missed | overdue | due | scheduled


@dataclass(frozen=True)
class Lane:
    """One participant's row of the swimmer plot."""

    study_id: str
    cohort: int
    dose_level: int
    enrolled_on: date
    infused_on: date | None
    window_start: date | None
    window_end: date | None
    events: tuple[AeMark, ...] = ()
    visits: tuple[VisitMark, ...] = ()

    @property
    def dlts(self) -> int:
        return sum(1 for e in self.events if e.dlt_status == AdverseEvent.DltStatus.CONFIRMED)


@dataclass(frozen=True)
class GradeRow:
    dose_level: int
    label: str
    counts: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Signature:
    name: str
    meaning: str
    signed_at: datetime


@dataclass(frozen=True)
class ReviewStep:
    review: int
    cohort_sequence: int
    dose_level: int
    kind: str
    state: str
    state_display: str
    opened_at: datetime
    data_cut: str  # the snapshot's as-of date (site date)
    outcomes: str
    recommendation: str  # what the protocol's design recommends
    decision: str
    decision_display: str
    rationale: str
    decided_at: datetime | None
    signatures: tuple[Signature, ...]
    opened_cohort: int | None  # sequence of the cohort the decision opened
    opened_dose_level: int | None


@dataclass(frozen=True)
class ClockRow:
    kind: str
    label: str
    on_time: int
    late: int
    open_overdue: int
    open_pending: int

    @property
    def total(self) -> int:
        return self.on_time + self.late + self.open_overdue + self.open_pending


@dataclass(frozen=True)
class TrialDashboard:
    trial: Trial
    as_of: date
    zone: str
    cohorts: list[CohortRow]
    lanes: list[Lane]
    grades_by_dose: list[GradeRow]
    enrollment: dict[int, list[tuple[date, int]]]  # cohort sequence -> (site date, cumulative enrolled)
    reviews: list[ReviewStep] = field(default_factory=list)
    clocks: list[ClockRow] = field(default_factory=list)
    dose_finding: dict = field(default_factory=dict)  # pathways and TITE-BOIN from the current data
    path_rows: list[dict] = field(default_factory=list)


def _next_review(row: dict) -> str:
    nxt = row["next_review"]
    if not nxt:
        return ""
    if nxt["review"]:
        return f"Review {nxt['review']} open"
    return f"Opens {nxt['opens_on']}"


def _visit_status(visit: FollowUpVisit, today: date) -> str:
    if visit.status == FollowUpVisit.Status.COMPLETED:
        return "done"
    if visit.status == FollowUpVisit.Status.MISSED:
        return "missed"
    if today > visit.window_end:
        return "overdue"
    return "due" if today >= visit.window_start else "scheduled"


def cohort_rows(trial: Trial, *, verdicts: dict | None = None) -> list[CohortRow]:
    """The API's trial summary per cohort, plus the evaluable count under the protocol's rule."""
    summary = safety_selectors.trial_summary(trial)
    if verdicts is None:
        verdicts = safety_selectors.participant_evaluability(trial)
    cohort_of = dict(Enrollment.objects.filter(trial=trial).values_list("participant_id", "cohort_id"))
    evaluable: dict[int, int] = {}
    for participant_id, verdict in verdicts.items():
        if verdict.evaluable:
            cohort = cohort_of[participant_id]
            evaluable[cohort] = evaluable.get(cohort, 0) + 1
    states = dict(Cohort.State.choices)
    return [
        CohortRow(
            cohort=row["cohort"], sequence=row["sequence"], dose_level=row["dose_level"],
            dose_label=row["dose_label"], cells_display=row["cells_display"], state=row["state"],
            state_display=states.get(row["state"], row["state"]), capacity=row["capacity"],
            enrolled=row["enrolled"], infused=row["infused"], in_dlt_window=row["in_dlt_window"],
            evaluable=evaluable.get(row["cohort"], 0), dlts=row["dlts"], dlt_candidates=row["dlt_candidates"],
            serious_adverse_events=row["serious_adverse_events"], next_review=_next_review(row),
        )
        for row in summary["cohorts"]
    ]  # fmt: skip


def _scoped(queryset: QuerySet, user) -> QuerySet:
    """Only the participants of the reader's sites (``trial.access``); everything when no reader is named."""
    return queryset if user is None else scope_records(queryset, user)


def swimmer_lanes(
    trial: Trial, *, today: date, zone: zoneinfo.ZoneInfo, user=None, sponsor: bool = False
) -> list[Lane]:
    """One lane per enrolled participant (cohort, then slot) of the reader's sites, in four queries."""
    enrollments = list(
        _scoped(Enrollment.objects.filter(trial=trial), user)
        .select_related("participant", "cohort__dose_level")
        .order_by("cohort__sequence", "slot")
    )
    first_infusion: dict[int, date] = {}
    for participant_id, started_at in (
        _scoped(Infusion.objects.filter(trial=trial), user)
        .order_by("started_at")
        .values_list("participant_id", "started_at")
    ):
        first_infusion.setdefault(participant_id, timezone.localdate(started_at, timezone=zone))
    events: dict[int, list[AeMark]] = {}
    rows = list(
        _scoped(AdverseEvent.objects.filter(participant__trial=trial), user)
        .select_related("ctcae_term")
        .order_by("onset_date", "pk")
    )
    released = free_text_released(rows) if sponsor else None  # a sponsor: typed terms only once released
    for event in rows:
        shown = released is None or (AdverseEvent, event.pk) in released
        events.setdefault(event.participant_id, []).append(
            AeMark(event.onset_date, event.worst_grade, ae_term(event, text_shown=shown), event.serious,
                   event.dlt_status)
        )  # fmt: skip
    visits: dict[int, list[VisitMark]] = {}
    for visit in _scoped(FollowUpVisit.objects.filter(participant__trial=trial), user).order_by(
        "target_date", "day_offset"
    ):
        visits.setdefault(visit.participant_id, []).append(
            VisitMark(visit.done_on or visit.target_date, visit.code, _visit_status(visit, today))
        )
    return [
        Lane(
            study_id=e.participant.study_id or "", cohort=e.cohort.sequence, dose_level=e.cohort.dose_level.level,
            enrolled_on=timezone.localdate(e.enrolled_at, timezone=zone),
            infused_on=first_infusion.get(e.participant_id), window_start=e.participant.dlt_window_start,
            window_end=e.participant.dlt_window_end, events=tuple(events.get(e.participant_id, ())),
            visits=tuple(visits.get(e.participant_id, ())),
        )
        for e in enrollments
    ]  # fmt: skip


def grades_by_dose(trial: Trial, *, user=None) -> list[GradeRow]:
    """Adverse events (of the reader's sites) counted by their worst grade at each dose level (of the
    participant's cohort)."""
    rows = {d.level: GradeRow(d.level, d.label, dict.fromkeys(GRADES, 0)) for d in trial.dose_levels.order_by("level")}
    enrollments = _scoped(Enrollment.objects.filter(trial=trial), user)
    level_of = dict(enrollments.values_list("participant_id", "cohort__dose_level__level"))
    events = _scoped(AdverseEvent.objects.filter(participant__trial=trial), user)
    for participant_id, grade in events.values_list("participant_id", "worst_grade"):
        level = level_of.get(participant_id)
        if level in rows:
            rows[level].counts[grade] += 1
    return list(rows.values())


def enrollment_over_time(trial: Trial, *, zone: zoneinfo.ZoneInfo, user=None) -> dict[int, list[tuple[date, int]]]:
    """Per cohort sequence: each site date something was enrolled (at the reader's sites), with the cohort's
    cumulative count."""
    series: dict[int, list[tuple[date, int]]] = {}
    enrollments = _scoped(Enrollment.objects.filter(trial=trial), user)
    for sequence, enrolled_at in enrollments.order_by("enrolled_at").values_list("cohort__sequence", "enrolled_at"):
        day = timezone.localdate(enrolled_at, timezone=zone)
        points = series.setdefault(sequence, [])
        count = (points[-1][1] if points else 0) + 1
        if points and points[-1][0] == day:
            points[-1] = (day, count)
        else:
            points.append((day, count))
    return dict(sorted(series.items()))


def review_steps(trial: Trial, *, sponsor: bool = False) -> list[ReviewStep]:
    """Every safety review of the trial, oldest first, with its signatures and the cohort it opened (for a
    sponsor, the rationale only where a data manager released it)."""
    reviews = list(
        SafetyReview.objects.filter(trial=trial)
        .select_related("cohort__dose_level", "resulting_cohort__dose_level", "trial")
        .prefetch_related("signatures")
        .order_by("opened_at", "pk")
    )
    released = free_text_released(reviews) if sponsor else None
    states = dict(SafetyReview.State.choices)
    decisions = dict(SafetyReview.Decision.choices)
    steps = []
    for review in reviews:
        opened = review.resulting_cohort
        steps.append(ReviewStep(
            review=review.pk, cohort_sequence=review.cohort.sequence, dose_level=review.cohort.dose_level.level,
            kind=review.kind, state=review.state, state_display=states[review.state], opened_at=review.opened_at,
            data_cut=review.snapshot.get("as_of", ""), outcomes=review.snapshot.get("outcomes", ""),
            recommendation=safety_services.protocol_recommendation(review), decision=review.decision,
            decision_display=decisions.get(review.decision, ""),
            rationale=review.rationale if released is None or (SafetyReview, review.pk) in released or
            not review.rationale else WITHHELD,
            decided_at=review.decided_at,
            signatures=tuple(Signature(s.signer_full_name, s.meaning, s.signed_at)
                             for s in sorted(review.signatures.all(), key=lambda s: s.sequence)),
            opened_cohort=opened.sequence if opened else None,
            opened_dose_level=opened.dose_level.level if opened else None,
        ))  # fmt: skip
    return steps


def clock_compliance(trial: Trial, *, now: datetime | None = None, user=None) -> list[ClockRow]:
    """Expedited-reporting clocks (of the reader's sites) by kind: reported on time, reported late, open past due,
    open not yet due."""
    now = now or timezone.now()
    counts = {kind: [0, 0, 0, 0] for kind in ReportingClock.Kind.values}
    clocks = _scoped(ReportingClock.objects.filter(adverse_event__participant__trial=trial), user)
    for kind, due_at, done_at in clocks.values_list("kind", "due_at", "done_at"):
        if done_at is not None:
            counts[kind][0 if done_at <= due_at else 1] += 1
        else:
            counts[kind][2 if due_at < now else 3] += 1
    labels = dict(ReportingClock.Kind.choices)
    return [ClockRow(kind, labels[kind], *values) for kind, values in counts.items()]


def trial_dashboard(trial: Trial, *, with_reviews: bool = True, with_clocks: bool = True, user=None) -> TrialDashboard:
    """The trial page's data. With ``user``, the participant-level plots (swimmer lanes, grades, enrollment over
    time, clocks) cover only the reader's sites (``trial.access``); the cohorts' rows, the dose-finding and the
    reviews are the trial's (a cohort's slots and decisions are shared by every site)."""
    zone = site_zone(trial)
    today = timezone.localdate(timezone=zone)
    sponsor = user is not None and is_sponsor(user)
    verdicts = safety_selectors.participant_evaluability(trial)
    dose_finding = safety_selectors.trial_dose_finding(trial, today=today, verdicts=verdicts)
    return TrialDashboard(
        trial=trial, as_of=today, zone=zone.key, cohorts=cohort_rows(trial, verdicts=verdicts),
        lanes=swimmer_lanes(trial, today=today, zone=zone, user=user, sponsor=sponsor),
        grades_by_dose=grades_by_dose(trial, user=user),
        enrollment=enrollment_over_time(trial, zone=zone, user=user),
        reviews=review_steps(trial, sponsor=sponsor) if with_reviews else [],
        clocks=clock_compliance(trial, user=user) if with_clocks else [],
        dose_finding=dose_finding, path_rows=safety_selectors.pathway_rows(dose_finding.get("pathways") or {}),
    )  # fmt: skip
