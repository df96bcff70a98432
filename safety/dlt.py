"""Pure rules for adverse events: DLT candidacy, reporting deadlines, stopping rules. No Django import.

The thresholds are protocol data (Trial.dlt_min_grade, dlt_min_relationship, dlt_window_days,
dlt_stop_count, stop_on_related_death); these functions only apply them.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
    """
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
        True, f"Grade {grade}, {relationship} related, onset on day {day} of the DLT window ({window_start} to "
        f"{window_end})."
    )  # fmt: skip


@dataclass(frozen=True)
class ClockDue:
    kind: str
    due_at: datetime
    recipient: str


def reporting_clocks(
    *,
    serious: bool,
    relationship: str,
    expected: bool,
    fatal_or_life_threatening: bool,
    aware_at: datetime,
    site_time_zone: str,
) -> list[ClockDue]:
    """Expedited-reporting deadlines counted from the site's awareness (ICH E2A).

    A serious event: sponsor within 24 hours. Serious + related (possible or more) + unexpected
    (a SUSAR): regulators within 7 calendar days when fatal or life-threatening, otherwise 15.
    Calendar days are counted in the site's time zone (so a DST change does not shift the day).
    """
    if not serious:
        return []
    zone = ZoneInfo(site_time_zone)
    local = aware_at.astimezone(zone)
    clocks = [ClockDue("sponsor_24h", aware_at + timedelta(hours=24), "sponsor")]
    if related_at_least(relationship, "possible") and not expected:
        days = 7 if fatal_or_life_threatening else 15
        clocks.append(ClockDue(f"susar_{days}d", (local + timedelta(days=days)).astimezone(aware_at.tzinfo),
                               "regulatory authority"))  # fmt: skip
    return clocks


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
