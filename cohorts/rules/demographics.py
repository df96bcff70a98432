"""Rules on who the participant is: yes/no facts, the investigator's call, age, sex, menopause, body size."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cohorts.rules.engine import (
    BOOLEAN_FACTS,
    EligibilityConfigError,
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
    str_param,
)
from cohorts.rules.support import (
    age_in_years,
    bmi,
    capitalise,
    fmt,
    one_decimal,
    yes_no,
)


@rule("boolean_fact")
def boolean_fact(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """A yes/no fact must be ``required`` (true/false). Params: fact, required, label."""
    name = str_param(params, "fact")
    if name not in BOOLEAN_FACTS:
        raise EligibilityConfigError(
            f"parameter 'fact' must name a yes/no screening fact ({', '.join(sorted(BOOLEAN_FACTS))}), got {name!r}"
        )
    required = bool_param(params, "required")
    label = capitalise(str_param(params, "label", name.replace("_", " ")))
    value = getattr(facts, name)
    if value is None:
        return Outcome(Verdict.MISSING_DATA, f"{label}: not recorded")
    if value is required:
        return Outcome(Verdict.MET, f"{label}: {yes_no(value)}")
    wanted = "required" if required else "not allowed"
    return Outcome(Verdict.NOT_MET, f"{label}: {yes_no(value)} ({wanted})")


@rule("investigator_judgment")
def investigator_judgment(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Wholly the investigator's call. Optional param: question (defaults to the criterion's text)."""
    return Outcome(Verdict.MET, "", needs_judgment=True, question=question_param(params))


@rule("age_sex_menopause")
def age_sex_menopause(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Sex, age range (inclusive, completed years at screening), years since menopause."""
    sex = str_param(params, "sex").upper()
    min_age = num_param(params, "min_age_years")
    max_age = num_param(params, "max_age_years")
    min_years = num_param(params, "min_years_since_menopause")
    require_natural = bool_param(params, "require_natural_menopause", default=False)

    checks = Checks()
    if facts.sex is None:
        checks.miss("Sex not recorded")
    elif facts.sex.strip().upper() != sex:
        checks.breach(f"Sex {facts.sex.strip()} is not the required {sex}")
    else:
        checks.passed(f"Sex {sex}")

    if facts.date_of_birth is None:
        checks.miss("Date of birth not recorded")
    if facts.screening_date is None:
        checks.miss("Screening date not recorded")
    if facts.date_of_birth is not None and facts.screening_date is not None:
        age = age_in_years(facts.date_of_birth, facts.screening_date)
        if age < min_age:
            checks.breach(f"Age {age} is below {fmt(min_age)}")
        elif age > max_age:
            checks.breach(f"Age {age} is above {fmt(max_age)}")
        else:
            checks.passed(f"age {age} is within {fmt(min_age)}–{fmt(max_age)}")

    years = facts.years_since_last_menses
    if years is None:
        checks.miss("Years since last menses not recorded")
    elif years < min_years:
        checks.breach(f"{fmt(years)} years since last menses is below {fmt(min_years)}")
    else:
        checks.passed(f"{fmt(years)} years since last menses")

    if require_natural:
        if facts.natural_menopause is None:
            checks.miss("Whether menopause was natural (primary) not recorded")
        elif not facts.natural_menopause:
            checks.breach("Menopause was not natural (primary menopause is required)")
        else:
            checks.passed("natural menopause")
    return checks.outcome()


@rule("weight_bmi")
def weight_bmi(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Minimum weight; BMI within an inclusive range, compared unrounded."""
    min_weight = num_param(params, "min_weight_kg")
    min_bmi = num_param(params, "min_bmi")
    max_bmi = num_param(params, "max_bmi")

    checks = Checks()
    weight, height = facts.weight_kg, facts.height_cm
    if weight is None:
        checks.miss("Weight not recorded")
    elif weight < min_weight:
        checks.breach(f"Weight {fmt(weight)} kg is below {fmt(min_weight)}")
    else:
        checks.passed(f"Weight {fmt(weight)} kg")
    if height is None:
        checks.miss("Height not recorded (needed for BMI)")
    if weight is not None and height is not None:
        exact = bmi(weight, height)
        inside = min_bmi <= exact <= max_bmi
        shown = one_decimal(exact)
        text = f"{shown}"
        if (min_bmi <= shown <= max_bmi) != inside:
            text = f"{shown} ({exact.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)} unrounded)"
        if inside:
            checks.passed(f"BMI {text} kg/m² is within {fmt(min_bmi)}–{fmt(max_bmi)}")
        else:
            checks.breach(f"BMI {text} kg/m² is outside {fmt(min_bmi)}–{fmt(max_bmi)}")
    return checks.outcome()
