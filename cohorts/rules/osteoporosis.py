"""Rules on the disease: osteoporosis at high fracture risk (I4), secondary osteoporosis, DXA measurability."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cohorts.rules.engine import (
    Outcome,
    ScreeningFacts,
    Verdict,
    rule,
)
from cohorts.rules.params import (
    Checks,
    bool_param,
    num_param,
    question_param,
    whole_param,
)
from cohorts.rules.support import (
    fmt,
    join_parts,
    within_months_before,
)


@dataclass(frozen=True)
class _Branch:
    """One "at least one of" feature of I4: holds (True), does not (False), cannot tell (None)."""

    key: str
    holds: bool | None
    text: str


def _fragility_fracture_branch(facts: ScreeningFacts, months: int) -> _Branch:
    if facts.fractures is None:
        return _Branch("fragility_fracture", None, "fracture history not recorded")
    fragility = sorted((f for f in facts.fractures if f.fragility), key=lambda f: f.date, reverse=True)
    if not fragility:
        return _Branch("fragility_fracture", False, "no fragility fracture")
    latest = fragility[0]
    if facts.screening_date is None:
        return _Branch("fragility_fracture", None, "screening date not recorded (needed for fracture dates)")
    if within_months_before(latest.date, facts.screening_date, months):
        return _Branch(
            "fragility_fracture",
            True,
            f"fragility fracture ({latest.site}) on {latest.date.isoformat()}, within {months} months before screening",
        )
    return _Branch(
        "fragility_fracture",
        False,
        f"latest fragility fracture on {latest.date.isoformat()} is more than {months} months before screening",
    )


def _fracture_on_treatment_branch(facts: ScreeningFacts) -> _Branch:
    if facts.fractures is None:
        return _Branch("fracture_on_treatment", None, "fracture history not recorded")
    for fracture in facts.fractures:
        if fracture.on_anti_osteoporosis_treatment:
            return _Branch(
                "fracture_on_treatment",
                True,
                f"fracture ({fracture.site}) on {fracture.date.isoformat()} while on anti-osteoporosis treatment",
            )
    return _Branch("fracture_on_treatment", False, "no fracture while on anti-osteoporosis treatment")


def _flag_branch(key: str, value: bool | None, yes: str, no: str, unrecorded: str) -> _Branch:
    return _Branch(key, value, unrecorded if value is None else (yes if value else no))


def _t_score_branch(facts: ScreeningFacts, below: Decimal) -> _Branch:
    t_scores = {
        "lumbar spine L1-L4": facts.t_score_lumbar_l1_l4,
        "total hip": facts.t_score_total_hip,
        "femoral neck": facts.t_score_femoral_neck,
    }
    low = [
        f"T-score {fmt(value)} at {site} is below {fmt(below)}"
        for site, value in t_scores.items()
        if value is not None and value < below
    ]
    if low:
        return _Branch("t_score", True, ", ".join(low))
    unrecorded = [site for site, value in t_scores.items() if value is None]
    if unrecorded:
        return _Branch("t_score", None, f"T-score at {', '.join(unrecorded)} not recorded")
    lowest = min(value for value in t_scores.values() if value is not None)
    return _Branch("t_score", False, f"lowest T-score {fmt(lowest)} is not below {fmt(below)}")


def _frax_branch(facts: ScreeningFacts, major_above: Decimal, hip_above: Decimal) -> _Branch:
    major, hip = facts.frax_major_pct, facts.frax_hip_pct
    high = []
    if major is not None and major > major_above:
        high.append(f"FRAX major osteoporotic fracture risk {fmt(major)}% is above {fmt(major_above)}%")
    if hip is not None and hip > hip_above:
        high.append(f"FRAX hip fracture risk {fmt(hip)}% is above {fmt(hip_above)}%")
    if high:
        return _Branch("frax", True, ", ".join(high))
    if major is None or hip is None:
        return _Branch("frax", None, "FRAX risk not recorded")
    return _Branch(
        "frax",
        False,
        f"FRAX major {fmt(major)}% is not above {fmt(major_above)}% and hip {fmt(hip)}% is not above {fmt(hip_above)}%",
    )


def _glucocorticoid_branch(facts: ScreeningFacts, min_dose: Decimal, over_months: Decimal) -> _Branch:
    dose, months = facts.glucocorticoid_dose_mg_per_day, facts.glucocorticoid_duration_months
    if dose is None:
        return _Branch("glucocorticoid", None, "glucocorticoid use not recorded")
    if dose < min_dose:
        return _Branch("glucocorticoid", False, f"glucocorticoid {fmt(dose)} mg/day is below {fmt(min_dose)}")
    if months is None:
        return _Branch("glucocorticoid", None, "duration of glucocorticoid use not recorded")
    described = f"glucocorticoid {fmt(dose)} mg/day (prednisolone-equivalent) for {fmt(months)} months"
    if months > over_months:
        return _Branch("glucocorticoid", True, described)
    return _Branch("glucocorticoid", False, f"{described} is not over {fmt(over_months)} months")


@rule("osteoporosis_high_fracture_risk")
def osteoporosis_high_fracture_risk(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """At least one qualifying feature (I4). See the module docstring for the glucocorticoid case.

    MET as soon as one feature holds (the reason lists every one that holds); MISSING_DATA when none
    holds yet but some could once recorded; NOT_MET when every feature is recorded and none holds.
    """
    fracture_months = whole_param(params, "fragility_fracture_within_months")
    t_below = num_param(params, "t_score_below")
    frax_major_above = num_param(params, "frax_major_above_pct")
    frax_hip_above = num_param(params, "frax_hip_above_pct")
    gc_min = num_param(params, "glucocorticoid_min_mg_per_day")
    gc_over = num_param(params, "glucocorticoid_over_months")
    gc_only_needs_judgment = bool_param(params, "glucocorticoid_only_needs_judgment", default=True)

    branches = [
        _fragility_fracture_branch(facts, fracture_months),
        _fracture_on_treatment_branch(facts),
        _flag_branch(
            "multiple_site_fractures",
            facts.multiple_site_fracture_history,
            "history of multiple-site fractures",
            "no multiple-site fracture history",
            "multiple-site fracture history not recorded",
        ),
        _t_score_branch(facts, t_below),
        _flag_branch(
            "fall_risk",
            facts.high_fall_risk,
            "high risk of falling",
            "no high risk of falling",
            "fall risk not recorded",
        ),
        _frax_branch(facts, frax_major_above, frax_hip_above),
        _glucocorticoid_branch(facts, gc_min, gc_over),
    ]
    held = [b for b in branches if b.holds is True]
    unknown = list(dict.fromkeys(b.text for b in branches if b.holds is None))  # de-duplicated, in order
    if held and gc_only_needs_judgment and all(b.key == "glucocorticoid" for b in held):
        reason = f"Qualifies only through current glucocorticoid use: {held[0].text}"
        if unknown:
            reason = join_parts(reason, *unknown)
        return Outcome(
            Verdict.MET,
            reason,
            needs_judgment=True,
            question=(
                "primary (not glucocorticoid-induced) osteoporosis at high fracture risk, qualifying through "
                "current glucocorticoid use (drug-induced osteoporosis is exclusion E2)"
            ),
        )
    if held:
        return Outcome(Verdict.MET, "Qualifies through: " + "; ".join(b.text for b in held))
    if unknown:
        return Outcome(Verdict.MISSING_DATA, "No qualifying feature yet; " + "; ".join(unknown))
    return Outcome(Verdict.NOT_MET, "No qualifying feature: " + "; ".join(b.text for b in branches))


@rule("secondary_osteoporosis")
def secondary_osteoporosis(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """The investigator's call; recorded high-dose glucocorticoid use is pointed out (drug-induced)."""
    gc_min = num_param(params, "glucocorticoid_min_mg_per_day")
    dose, months = facts.glucocorticoid_dose_mg_per_day, facts.glucocorticoid_duration_months
    note = ""
    if dose is not None and dose >= gc_min:
        duration = f" for {fmt(months)} months" if months is not None else ""
        note = (
            f"Glucocorticoid {fmt(dose)} mg/day (prednisolone-equivalent){duration} recorded: "
            "consider drug-induced osteoporosis"
        )
    return Outcome(Verdict.MET, note, needs_judgment=True, question=question_param(params))


@rule("dxa_measurability")
def dxa_measurability(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: fewer than ``min_measurable_lumbar_vertebrae``, or body size impedes DXA (E9)."""
    minimum = whole_param(params, "min_measurable_lumbar_vertebrae")
    checks = Checks()
    count = facts.measurable_lumbar_vertebrae
    if count is None:
        checks.miss("Number of lumbar vertebrae measurable by DXA not recorded")
    elif count < minimum:
        noun = "vertebra" if count == 1 else "vertebrae"
        checks.breach(f"Only {count} lumbar {noun} measurable by DXA (fewer than {minimum})")
    else:
        checks.passed(f"{count} lumbar vertebrae measurable by DXA")
    if facts.dxa_impeded is None:
        checks.miss("Whether height, weight or body size impedes DXA not recorded")
    elif facts.dxa_impeded:
        checks.breach("Height, weight or body size impedes accurate DXA measurement")
    else:
        checks.passed("body size does not impede DXA")
    return checks.outcome()
