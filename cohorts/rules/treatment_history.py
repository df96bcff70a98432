"""Rules on what the participant took or took part in before: bone medication, other clinical trials."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cohorts.rules.engine import (
    Outcome,
    ScreeningFacts,
    Verdict,
    rule,
)
from cohorts.rules.params import (
    Checks,
    num_param,
    whole_param,
)
from cohorts.rules.support import (
    fmt,
    months_before,
    within_months_before,
)


def _recent(
    checks: Checks, event: dt.date | None, screening: dt.date | None, months: int, label: str, none_text: str
) -> None:
    """Breach when ``event`` lies within ``months`` calendar months before screening (edge day inside)."""
    if event is None:
        checks.passed(none_text)
    elif screening is None:
        checks.miss(f"Screening date not recorded (needed for {label.lower()})")
    elif within_months_before(event, screening, months):
        cutoff = months_before(screening, months)
        checks.breach(
            f"{label} on {event.isoformat()}, within {months} months before screening "
            f"(on or after {cutoff.isoformat()})"
        )
    else:
        checks.passed(f"{label.lower()} on {event.isoformat()}, more than {months} months before screening")


@rule("prior_bone_medication")
def prior_bone_medication(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: recent PTH analog, RANKL inhibitor, or the bisphosphonate patterns (E8)."""
    pth_months = whole_param(params, "pth_analog_within_months")
    rankl_months = whole_param(params, "rankl_inhibitor_within_months")
    oral_max = num_param(params, "oral_bisphosphonate_max_cumulative_months")
    oral_recent_min = num_param(params, "oral_bisphosphonate_recent_min_cumulative_months")
    oral_recent_months = whole_param(params, "oral_bisphosphonate_recent_within_months")
    iv_months = whole_param(params, "iv_bisphosphonate_within_months")

    if not facts.bone_treatment_history_recorded:
        return Outcome(Verdict.MISSING_DATA, "Prior anti-osteoporosis treatment history not recorded")
    screening = facts.screening_date
    checks = Checks()
    _recent(checks, facts.last_pth_analog_date, screening, pth_months, "PTH analog last given", "no PTH analog")
    _recent(
        checks,
        facts.last_rankl_inhibitor_date,
        screening,
        rankl_months,
        "RANKL inhibitor last given",
        "no RANKL inhibitor",
    )

    cumulative, last_oral = facts.oral_bisphosphonate_cumulative_months, facts.last_oral_bisphosphonate_date
    if cumulative is None and last_oral is not None:
        checks.miss("Cumulative oral bisphosphonate use (months) not recorded")
    elif cumulative is None or cumulative == 0:
        checks.passed("no oral bisphosphonate")
    elif cumulative >= oral_max:
        checks.breach(f"Cumulative oral bisphosphonate use {fmt(cumulative)} months is ≥ {fmt(oral_max)} months")
    elif cumulative > oral_recent_min:
        span = (
            f"Oral bisphosphonate for {fmt(cumulative)} months "
            f"(more than {fmt(oral_recent_min)}, less than {fmt(oral_max)})"
        )
        if last_oral is None:
            checks.miss(f"Date of last oral bisphosphonate dose not recorded ({span.lower()})")
        elif screening is None:
            checks.miss("Screening date not recorded (needed for the last oral bisphosphonate dose)")
        elif within_months_before(last_oral, screening, oral_recent_months):
            cutoff = months_before(screening, oral_recent_months)
            checks.breach(
                f"{span} with the last dose on {last_oral.isoformat()}, within {oral_recent_months} months "
                f"before screening (on or after {cutoff.isoformat()})"
            )
        else:
            checks.passed(f"{span.lower()}, last dose more than {oral_recent_months} months before screening")
    else:
        checks.passed(f"oral bisphosphonate for {fmt(cumulative)} months (not more than {fmt(oral_recent_min)})")
    _recent(
        checks,
        facts.last_iv_bisphosphonate_date,
        screening,
        iv_months,
        "Intravenous bisphosphonate last given",
        "no intravenous bisphosphonate",
    )
    return checks.outcome()


@rule("recent_other_trial")
def recent_other_trial(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: took part in another clinical trial within ``within_months`` before screening (E16)."""
    months = whole_param(params, "within_months")
    if not facts.other_trial_history_recorded:
        return Outcome(Verdict.MISSING_DATA, "Participation in other clinical trials not recorded")
    checks = Checks()
    _recent(
        checks,
        facts.last_other_trial_date,
        facts.screening_date,
        months,
        "Last participation in another clinical trial",
        "no participation in another clinical trial",
    )
    return checks.outcome()
