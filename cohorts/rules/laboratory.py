"""Rules on laboratory values: infection serology, thyroid, liver and kidney (Gilbert's syndrome waiver)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cohorts.rules.engine import (
    Outcome,
    ScreeningFacts,
    rule,
)
from cohorts.rules.params import (
    Checks,
    bool_param,
    num_param,
    question_param,
)
from cohorts.rules.support import fmt


@rule("infection_serology")
def infection_serology(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: HBV-DNA at/above a limit or above ULN; HCV Ab+ with RNA > ULN; syphilis; HIV (E10)."""
    hbv_limit = num_param(params, "hbv_dna_exclude_at_or_above_cps_per_ml")
    checks = Checks()
    hbv, uln = facts.hbv_dna_cps_per_ml, facts.hbv_dna_uln
    if hbv is None:
        checks.miss("HBV-DNA not recorded")
    elif hbv >= hbv_limit:
        checks.breach(f"HBV-DNA {fmt(hbv)} cps/mL is ≥ {fmt(hbv_limit)}")
    elif uln is None:
        checks.miss("HBV-DNA upper limit of normal not recorded")
    elif hbv > uln:
        checks.breach(f"HBV-DNA {fmt(hbv)} cps/mL is above the upper limit of normal ({fmt(uln)})")
    else:
        checks.passed(f"HBV-DNA {fmt(hbv)} cps/mL")

    if facts.hcv_antibody_positive is None:
        checks.miss("HCV antibody not recorded")
    elif not facts.hcv_antibody_positive:
        checks.passed("HCV antibody negative")
    elif facts.hcv_rna_above_uln is None:
        checks.miss("HCV RNA not recorded (HCV antibody positive)")
    elif facts.hcv_rna_above_uln:
        checks.breach("HCV antibody positive and HCV RNA above the upper limit of normal")
    else:
        checks.passed("HCV antibody positive but HCV RNA not above the upper limit of normal")

    for value, name in ((facts.syphilis_antibody_positive, "Syphilis"), (facts.hiv_antibody_positive, "HIV")):
        if value is None:
            checks.miss(f"{name} antibody not recorded")
        elif value:
            checks.breach(f"{name} antibody positive")
        else:
            checks.passed(f"{name} antibody negative")
    return checks.outcome()


@rule("thyroid")
def thyroid(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: TSH below range; TSH in (elevated, high] with T4 out of range; TSH > high (E13).

    With ``investigator_judgment`` true, "current uncontrolled thyroid disease" is also asked.
    """
    elevated = num_param(params, "tsh_elevated_above")
    high = num_param(params, "tsh_high_above")
    judged = bool_param(params, "investigator_judgment", default=False)
    question = question_param(params)
    checks = Checks()
    tsh, lower, upper = facts.tsh, facts.tsh_lower_limit, facts.tsh_upper_limit
    if tsh is None:
        checks.miss("TSH not recorded")
    elif tsh > high:
        checks.breach(f"TSH {fmt(tsh)} μIU/mL is above {fmt(high)}")
    elif tsh > elevated:
        if facts.t4_in_range is None:
            checks.miss(f"Serum T4 not recorded (TSH {fmt(tsh)} μIU/mL is above {fmt(elevated)})")
        elif not facts.t4_in_range:
            checks.breach(
                f"TSH {fmt(tsh)} μIU/mL is above {fmt(elevated)} (and not above {fmt(high)}) "
                "with serum T4 outside the normal range"
            )
        else:
            checks.passed(f"TSH {fmt(tsh)} μIU/mL is above {fmt(elevated)} but serum T4 is within the normal range")
    elif lower is None:
        checks.miss("Lower limit of the TSH normal range not recorded")
    elif tsh < lower:
        checks.breach(f"TSH {fmt(tsh)} μIU/mL is below the normal range (lower limit {fmt(lower)})")
    elif upper is not None and tsh > upper:
        checks.passed(
            f"TSH {fmt(tsh)} μIU/mL is above the normal range (upper limit {fmt(upper)}) but not above {fmt(elevated)}"
        )
    else:
        checks.passed(f"TSH {fmt(tsh)} μIU/mL")
    return checks.outcome(needs_judgment=judged, question=question)


@rule("hepatic_renal")
def hepatic_renal(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: AST/ALT ≥ n×ULN, ALP/bilirubin ≥ m×ULN, eGFR below a limit (E14).

    With ``investigator_judgment`` true, cirrhosis / unstable liver disease / biliary anomalies
    are also asked. With ``gilbert_waives_bilirubin`` true, an investigator's documented diagnosis of
    Gilbert's syndrome (``facts.gilbert_syndrome``) waives the bilirubin limit only.
    """
    transaminase = num_param(params, "aminotransferase_exclude_at_or_above_x_uln")
    alp_bilirubin = num_param(params, "alp_bilirubin_exclude_at_or_above_x_uln")
    egfr_below = num_param(params, "egfr_exclude_below")
    judged = bool_param(params, "investigator_judgment", default=False)
    gilbert_waives = bool_param(params, "gilbert_waives_bilirubin", default=False)
    question = question_param(params)
    gilbert = facts.gilbert_syndrome if gilbert_waives else None
    checks = Checks()
    labs = (
        ("AST", facts.ast_x_uln, transaminase, None),
        ("ALT", facts.alt_x_uln, transaminase, None),
        ("ALP", facts.alp_x_uln, alp_bilirubin, None),
        ("Total bilirubin", facts.bilirubin_x_uln, alp_bilirubin, gilbert),
    )
    for name, value, limit, waiver in labs:
        if value is None:
            checks.miss(f"{name} not recorded")
        elif value >= limit and waiver is not None:
            checks.passed(
                f"{name} {fmt(value)}×ULN is ≥ {fmt(limit)}×ULN, waived: Gilbert's syndrome documented "
                f"by {waiver.by} on {waiver.on.isoformat()}"
            )
        elif value >= limit:
            checks.breach(f"{name} {fmt(value)}×ULN is ≥ {fmt(limit)}×ULN")
        else:
            checks.passed(f"{name} {fmt(value)}×ULN")
    if facts.egfr is None:
        checks.miss("eGFR not recorded")
    elif facts.egfr < egfr_below:
        checks.breach(f"eGFR {fmt(facts.egfr)} mL/min/1.73 m² is below {fmt(egfr_below)}")
    else:
        checks.passed(f"eGFR {fmt(facts.egfr)} mL/min/1.73 m²")
    return checks.outcome(needs_judgment=judged, question=question)
