"""Pure rules for adverse events: DLT candidacy, reporting deadlines, stopping rules. No Django import.

The thresholds are protocol data (Trial.dlt_min_grade, dlt_min_relationship, dlt_window_days,
dlt_stop_count, stop_on_related_death); these functions only apply them.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Ordered from least to most related; "possible or more" means index >= index("possible").
RELATIONSHIPS = ("not_related", "unlikely", "possible", "probable", "definite")


def related_at_least(relationship: str, minimum: str) -> bool:
    """True when ``relationship`` is ``minimum`` or stronger. Unknown values raise ValueError."""
    return RELATIONSHIPS.index(relationship) >= RELATIONSHIPS.index(minimum)


@dataclass(frozen=True)
class DltVerdict:
    candidate: bool
    reason: str


def dlt_candidacy(
    *,
    grade: int,
    relationship: str,
    onset: date,
    infusion_reaction: bool,
    window_start: date | None,
    window_end: date | None,
    min_grade: int,
    min_relationship: str,
) -> DltVerdict:
    """Is this event a DLT candidate? (Confirmed or rejected later by an investigator.)

    Candidate when grade >= min_grade AND related at min_relationship or more AND onset inside the
    participant's DLT window [start, end] (both days inclusive); or any infusion-related reaction of
    grade >= min_grade (whatever the relationship, since it happened during the infusion).

    A grade outside CTCAE's 1-5 (or not a whole number) raises ValueError: it is an entry error, never
    "not a candidate".
    """
    for name, value in (("grade", grade), ("min_grade", min_grade)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ValueError(f"CTCAE v5.0 grades are 1 to 5: {name} {value!r} is not one.")
    if grade < min_grade:
        return DltVerdict(False, f"Grade {grade} is below the DLT threshold (grade {min_grade}).")
    if infusion_reaction:
        return DltVerdict(True, f"Grade {grade} infusion-related reaction.")
    if not related_at_least(relationship, min_relationship):
        return DltVerdict(False, f"Relationship '{relationship.replace('_', ' ')}' is below '{min_relationship}'.")
    if window_start is None or window_end is None:
        return DltVerdict(False, "The participant has no DLT window (not infused).")
    if not window_start <= onset <= window_end:
        return DltVerdict(False, f"Onset {onset} is outside the DLT window {window_start} to {window_end}.")
    day = (onset - window_start).days
    return DltVerdict(
        True,
        f"Grade {grade}, {relationship} related, onset on day {day} of the DLT window ({window_start} to "
        f"{window_end}).",
    )


@dataclass(frozen=True)
class ClockDue:
    kind: str
    started_at: datetime
    due_at: datetime
    recipient: str


SPONSOR_NOTICE_HOURS = 24
SUSAR_FATAL_DAYS = 7  # ICH E2A III.A.1: "no later than 7 calendar days after first knowledge"
SUSAR_FOLLOW_UP_EXTRA_DAYS = 8  # ICH E2A III.A.1: "as complete a report as possible within 8 additional calendar days"
SUSAR_OTHER_DAYS = 15  # ICH E2A III.A.2: "no later than 15 calendar days after first knowledge"


def end_of_calendar_day(day0: date, days: int, zone: ZoneInfo) -> datetime:
    """The last moment of calendar day ``days`` counted from day 0 in ``zone`` (aware, in that zone).

    Day 0 is the day of first knowledge (ICH E2A counts calendar days; EU GVP Module VI and ICH E2D
    call the day of receipt "day 0"). Adding days to a date, not hours to a moment, keeps a DST change
    from moving the day."""
    last_day = day0 + timedelta(days=days)
    return datetime.combine(last_day, time.max, tzinfo=zone)


def reporting_clocks(
    *,
    serious: bool,
    relationship: str,
    expected: bool,
    fatal_or_life_threatening: bool,
    known_at: datetime,
    site_time_zone: str,
) -> list[ClockDue]:
    """Expedited-reporting deadlines for what is known at ``known_at`` (ICH E2A section III.A).

    A serious event: the sponsor within a rolling 24 hours of ``known_at``. A SUSAR (serious, related
    possibly or more, unexpected): regulators by the end of calendar day 7 when fatal or
    life-threatening, followed by as complete a report as possible 8 calendar days later (end of day
    15); otherwise by the end of calendar day 15. Day 0 is the site-local calendar day of ``known_at``;
    deadlines are the end of that day in the site's zone, returned in UTC.

    ``known_at`` is when the site first knew the facts that make the clock apply: the awareness of a
    new event, or, for a follow-up that makes an event serious, a SUSAR, fatal or life-threatening,
    when that new information was received.
    """
    if not serious:
        return []
    zone = ZoneInfo(site_time_zone)
    day0 = known_at.astimezone(zone).date()
    clocks = [ClockDue("sponsor_24h", known_at, known_at + timedelta(hours=SPONSOR_NOTICE_HOURS), "sponsor")]
    if related_at_least(relationship, "possible") and not expected:
        regulator = "regulatory authority"
        if fatal_or_life_threatening:
            clocks.append(
                ClockDue("susar_7d", known_at, _utc(end_of_calendar_day(day0, SUSAR_FATAL_DAYS, zone)), regulator)
            )
            follow_up = SUSAR_FATAL_DAYS + SUSAR_FOLLOW_UP_EXTRA_DAYS
            clocks.append(
                ClockDue("susar_followup", known_at, _utc(end_of_calendar_day(day0, follow_up, zone)), regulator)
            )
        else:
            clocks.append(
                ClockDue("susar_15d", known_at, _utc(end_of_calendar_day(day0, SUSAR_OTHER_DAYS, zone)), regulator)
            )
    return clocks


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class StopVerdict:
    stop: bool
    reason: str


def stopping_rule(
    *,
    related_deaths: int,
    confirmed_dlts_at_dose: int,
    dose_level: int,
    stop_on_related_death: bool,
    dlt_stop_count: int,
) -> StopVerdict:
    """Pause the cohort when a related grade 5 event occurred or DLTs at one dose reach the limit."""
    if stop_on_related_death and related_deaths > 0:
        return StopVerdict(True, "A related grade 5 (fatal) adverse event occurred.")
    if confirmed_dlts_at_dose >= dlt_stop_count:
        return StopVerdict(
            True, f"{confirmed_dlts_at_dose} confirmed DLTs at dose level {dose_level} (limit: {dlt_stop_count})."
        )
    return StopVerdict(False, "No stopping rule is met.")


# --- evaluability for dose escalation (a protocol parameter: Trial.evaluability_rule) -------------

EVALUABILITY_RULES = {
    "full_dose_or_dlt": "Evaluable when the full dose was given (within the dose tolerance) and the DLT window "
    "ended, or when a DLT occurred",
    "any_infusion": "Evaluable when any dose was given and the DLT window ended, or when a DLT occurred",
}


@dataclass(frozen=True)
class Evaluability:
    """``status``: ``evaluable``; ``pending`` (window still running, no DLT); ``not_evaluable`` (needs a
    replacement); ``not_infused``; ``replaced`` (already replaced, not counted)."""

    status: str
    reason: str

    @property
    def evaluable(self) -> bool:
        return self.status == "evaluable"

    @property
    def needs_replacement(self) -> bool:
        return self.status == "not_evaluable"


def evaluability(
    *, rule: str, infused: bool, full_dose: bool, has_dlt: bool, window_over: bool, replaced: bool
) -> Evaluability:
    """Does this participant count in the escalation rule (a T or an N)?

    A participant with a DLT always counts (a T), whatever dose she received: the toxicity is what
    the rule must see. Without one she counts as an N only once her DLT window is over and, under
    ``full_dose_or_dlt``, only if she received the full dose: a participant whose infusion stopped
    early without a DLT tells nothing about the dose's tolerability and must be replaced.
    """
    if rule not in EVALUABILITY_RULES:
        raise ValueError(f"Unknown evaluability rule {rule!r}: choose one of {', '.join(EVALUABILITY_RULES)}.")
    if replaced:
        return Evaluability("replaced", "Replaced: not counted.")
    if not infused:
        return Evaluability("not_infused", "Not infused yet.")
    if has_dlt:
        return Evaluability("evaluable", "A DLT occurred.")
    if rule == "full_dose_or_dlt" and not full_dose:
        return Evaluability(
            "not_evaluable", "The full dose was not given and no DLT occurred: not evaluable; replace her."
        )
    if not window_over:
        return Evaluability("pending", "The DLT window is still running.")
    return Evaluability("evaluable", "The DLT window ended without a DLT.")
