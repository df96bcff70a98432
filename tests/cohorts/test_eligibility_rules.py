"""The eligibility engine (cohorts.rules) against the NCT06949137 criteria.

Pure tests: no database, no Django. The criteria below are an inline copy of the protocol data
(rule keys and params as in the protocol file; texts shortened).
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from cohorts.rules import (
    CriterionKind,
    CriterionResult,
    CriterionSpec,
    DocumentedDiagnosis,
    EligibilityConfigError,
    EligibilityResult,
    Fracture,
    Outcome,
    ScreeningFacts,
    UnknownRuleError,
    Verdict,
    age_in_years,
    criteria_from_data,
    evaluate,
    known_rules,
    months_before,
    rule,
    validate_criteria,
)

MET, NOT_MET = Verdict.MET, Verdict.NOT_MET
NEEDS_JUDGMENT, MISSING = Verdict.NEEDS_JUDGMENT, Verdict.MISSING_DATA

CRITERIA_DATA: list[dict[str, Any]] = [
    {
        "code": "I1",
        "kind": "inclusion",
        "text": "Informed consent",
        "rule": "boolean_fact",
        "params": {"fact": "consent_signed", "required": True, "label": "Informed consent signed"},
    },
    {
        "code": "I2",
        "kind": "inclusion",
        "text": "Female, 45-85, menopause >= 2 years",
        "rule": "age_sex_menopause",
        "params": {
            "sex": "F",
            "min_age_years": 45,
            "max_age_years": 85,
            "min_years_since_menopause": 2,
            "require_natural_menopause": True,
        },
    },
    {
        "code": "I3",
        "kind": "inclusion",
        "text": "Weight and BMI",
        "rule": "weight_bmi",
        "params": {"min_weight_kg": 40, "min_bmi": 18, "max_bmi": 30},
    },
    {
        "code": "I4",
        "kind": "inclusion",
        "text": "Osteoporosis at high fracture risk",
        "rule": "osteoporosis_high_fracture_risk",
        "params": {
            "fragility_fracture_within_months": 24,
            "t_score_below": -3.0,
            "frax_major_above_pct": 30,
            "frax_hip_above_pct": 4.5,
            "glucocorticoid_min_mg_per_day": 7.5,
            "glucocorticoid_over_months": 3,
            "glucocorticoid_only_needs_judgment": True,
        },
        "needs_judgment": True,
    },
    {
        "code": "E2",
        "kind": "exclusion",
        "text": "Secondary osteoporosis",
        "rule": "secondary_osteoporosis",
        "params": {"glucocorticoid_min_mg_per_day": 7.5},
        "needs_judgment": True,
    },
    {"code": "E3", "kind": "exclusion", "text": "Malignancy", "rule": "investigator_judgment"},
    {"code": "E4", "kind": "exclusion", "text": "Severe disease", "rule": "investigator_judgment"},
    {"code": "E5", "kind": "exclusion", "text": "Allergic constitution", "rule": "investigator_judgment"},
    {
        "code": "E6",
        "kind": "exclusion",
        "text": "Transplant or radiation",
        "rule": "boolean_fact",
        "params": {"fact": "transplant_or_radiation", "required": False, "label": "Transplant or radiation"},
    },
    {
        "code": "E7",
        "kind": "exclusion",
        "text": "Cell therapy",
        "rule": "boolean_fact",
        "params": {"fact": "prior_cell_therapy", "required": False, "label": "Previous cell therapy"},
    },
    {
        "code": "E8",
        "kind": "exclusion",
        "text": "Prior bone medication",
        "rule": "prior_bone_medication",
        "params": {
            "pth_analog_within_months": 6,
            "rankl_inhibitor_within_months": 12,
            "oral_bisphosphonate_max_cumulative_months": 36,
            "oral_bisphosphonate_recent_min_cumulative_months": 3,
            "oral_bisphosphonate_recent_within_months": 6,
            "iv_bisphosphonate_within_months": 24,
        },
    },
    {
        "code": "E9",
        "kind": "exclusion",
        "text": "DXA",
        "rule": "dxa_measurability",
        "params": {"min_measurable_lumbar_vertebrae": 2},
    },
    {
        "code": "E10",
        "kind": "exclusion",
        "text": "Serology",
        "rule": "infection_serology",
        "params": {"hbv_dna_exclude_at_or_above_cps_per_ml": 1000},
    },
    {"code": "E11", "kind": "exclusion", "text": "Malabsorption", "rule": "investigator_judgment"},
    {
        "code": "E12",
        "kind": "exclusion",
        "text": "Neuro/psychiatric history",
        "rule": "investigator_judgment",
    },
    {
        "code": "E13",
        "kind": "exclusion",
        "text": "Thyroid",
        "rule": "thyroid",
        "params": {
            "tsh_elevated_above": 5.5,
            "tsh_high_above": 10.0,
            "investigator_judgment": True,
            "question": "current uncontrolled thyroid disease",
        },
    },
    {
        "code": "E14",
        "kind": "exclusion",
        "text": "Liver and kidney",
        "rule": "hepatic_renal",
        "params": {
            "aminotransferase_exclude_at_or_above_x_uln": 2.0,
            "alp_bilirubin_exclude_at_or_above_x_uln": 1.5,
            "egfr_exclude_below": 60,
            "gilbert_waives_bilirubin": True,
            "investigator_judgment": True,
            "question": "liver cirrhosis, unstable liver disease or biliary anomalies",
        },
    },
    {"code": "E15", "kind": "exclusion", "text": "Alcohol or drug abuse", "rule": "investigator_judgment"},
    {
        "code": "E16",
        "kind": "exclusion",
        "text": "Other trial",
        "rule": "recent_other_trial",
        "params": {"within_months": 6},
    },
    {"code": "E17", "kind": "exclusion", "text": "Otherwise unsuitable", "rule": "investigator_judgment"},
]
CRITERIA = criteria_from_data(CRITERIA_DATA)
JUDGMENT_CODES = ("E2", "E3", "E4", "E5", "E11", "E12", "E13", "E14", "E15", "E17")

SCREENING = date(2025, 6, 16)
SIX_MONTHS_BEFORE = date(2024, 12, 16)  # inside every 6-month window
ONE_YEAR_BEFORE = date(2024, 6, 16)
TWO_YEARS_BEFORE = date(2023, 6, 16)


def eligible_facts(**changes: Any) -> ScreeningFacts:
    """A fully eligible reference participant (qualifies for I4 through the lumbar T-score only)."""
    facts = ScreeningFacts(
        sex="F",
        date_of_birth=date(1958, 3, 10),
        screening_date=SCREENING,
        years_since_last_menses=Decimal("12"),
        natural_menopause=True,
        weight_kg=Decimal("58"),
        height_cm=Decimal("158"),
        fractures=(),
        multiple_site_fracture_history=False,
        t_score_lumbar_l1_l4=Decimal("-3.4"),
        t_score_total_hip=Decimal("-2.6"),
        t_score_femoral_neck=Decimal("-2.8"),
        high_fall_risk=False,
        frax_major_pct=Decimal("18"),
        frax_hip_pct=Decimal("3.2"),
        glucocorticoid_dose_mg_per_day=Decimal("0"),
        measurable_lumbar_vertebrae=4,
        dxa_impeded=False,
        ast_x_uln=Decimal("0.6"),
        alt_x_uln=Decimal("0.5"),
        alp_x_uln=Decimal("0.8"),
        bilirubin_x_uln=Decimal("0.7"),
        egfr=Decimal("82"),
        tsh=Decimal("2.1"),
        tsh_lower_limit=Decimal("0.27"),
        tsh_upper_limit=Decimal("4.2"),
        t4_in_range=True,
        hbv_dna_cps_per_ml=Decimal("0"),
        hbv_dna_uln=Decimal("500"),
        hcv_antibody_positive=False,
        syphilis_antibody_positive=False,
        hiv_antibody_positive=False,
        bone_treatment_history_recorded=True,
        prior_cell_therapy=False,
        transplant_or_radiation=False,
        other_trial_history_recorded=True,
        consent_signed=True,
        judgments=dict.fromkeys(JUDGMENT_CODES, True),
    )
    return replace(facts, **changes)


def without_i4_feature(**changes: Any) -> ScreeningFacts:
    """The reference participant with no qualifying I4 feature (T-scores all -2.5)."""
    return eligible_facts(**{"t_score_lumbar_l1_l4": Decimal("-2.5"), **changes})


def result_of(code: str, facts: ScreeningFacts) -> CriterionResult:
    return evaluate(CRITERIA, facts).result_for(code)


def judgments_with(**answers: bool) -> dict[str, bool]:
    return {**dict.fromkeys(JUDGMENT_CODES, True), **answers}


def assert_result(result: CriterionResult, verdict: Verdict, reason_fragment: str) -> None:
    assert result.verdict is verdict, result.reason
    assert reason_fragment in result.reason


# ---------------------------------------------------------------------------------------------
# The reference participant and the result's shape
# ---------------------------------------------------------------------------------------------


def test_reference_participant_meets_every_criterion_and_is_eligible() -> None:
    result = evaluate(CRITERIA, eligible_facts())

    assert [r.verdict for r in result.results] == [MET] * len(CRITERIA)
    assert result.eligible is True
    assert result.unmet == result.missing == result.pending_judgment == ()


def test_a_result_without_any_criterion_is_never_eligible() -> None:
    assert EligibilityResult(()).eligible is False


def test_results_come_back_in_protocol_order_with_their_kind() -> None:
    result = evaluate(CRITERIA, eligible_facts())

    assert [r.code for r in result.results] == [c["code"] for c in CRITERIA_DATA]
    assert result.result_for("I3").kind is CriterionKind.INCLUSION
    assert result.result_for("E10").kind is CriterionKind.EXCLUSION


@pytest.mark.parametrize(
    ("verdict", "value"),
    [(MET, "met"), (NOT_MET, "not_met"), (NEEDS_JUDGMENT, "needs_judgment"), (MISSING, "missing")],
)
def test_verdicts_have_stable_string_values(verdict: Verdict, value: str) -> None:
    assert verdict.value == value
    assert Verdict(value) is verdict


# ---------------------------------------------------------------------------------------------
# I1 consent, I2 sex/age/menopause, I3 weight/BMI
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent", "verdict", "reason"),
    [
        (True, MET, "Informed consent signed: yes"),
        (False, NOT_MET, "Informed consent signed: no (required)"),
        (None, MISSING, "Informed consent signed: not recorded"),
    ],
)
def test_consent_is_met_only_when_signed(consent: bool | None, verdict: Verdict, reason: str) -> None:
    assert_result(result_of("I1", eligible_facts(consent_signed=consent)), verdict, reason)


@pytest.mark.parametrize(
    ("date_of_birth", "verdict", "reason"),
    [
        (date(1980, 6, 17), NOT_MET, "Age 44 is below 45"),  # 45th birthday is tomorrow
        (date(1980, 6, 16), MET, "age 45 is within 45–85"),  # 45th birthday on the screening date
        (date(1939, 6, 17), MET, "age 85 is within 45–85"),  # 86th birthday is tomorrow
        (date(1939, 6, 16), NOT_MET, "Age 86 is above 85"),  # 86th birthday on the screening date
    ],
)
def test_age_limits_45_and_85_are_inclusive_in_completed_years(
    date_of_birth: date, verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("I2", eligible_facts(date_of_birth=date_of_birth)), verdict, reason)


@pytest.mark.parametrize(
    ("on", "age"),
    [(date(2025, 2, 28), 44), (date(2025, 3, 1), 45), (date(2024, 2, 29), 44), (date(2024, 2, 28), 43)],
)
def test_a_29_february_birthday_is_reached_on_1_march_in_other_years(on: date, age: int) -> None:
    assert age_in_years(date(1980, 2, 29), on) == age


@pytest.mark.parametrize(
    ("years", "verdict", "reason"),
    [
        (Decimal("1.9"), NOT_MET, "1.9 years since last menses is below 2"),
        (Decimal("2"), MET, "2 years since last menses"),
    ],
)
def test_menopause_must_have_lasted_at_least_two_years(years: Decimal, verdict: Verdict, reason: str) -> None:
    assert_result(result_of("I2", eligible_facts(years_since_last_menses=years)), verdict, reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sex": "M"}, "Sex M is not the required F"),
        ({"natural_menopause": False}, "Menopause was not natural (primary menopause is required)"),
    ],
)
def test_male_participant_or_induced_menopause_fails_i2(changes: dict[str, Any], reason: str) -> None:
    assert_result(result_of("I2", eligible_facts(**changes)), NOT_MET, reason)


@pytest.mark.parametrize(
    ("weight", "verdict", "reason"),
    [  # height 200 cm: BMI = weight / 4
        (Decimal("71.6"), NOT_MET, "BMI 17.9 kg/m² is outside 18–30"),
        (Decimal("72"), MET, "BMI 18.0 kg/m² is within 18–30"),
        (Decimal("120"), MET, "BMI 30.0 kg/m² is within 18–30"),
        (Decimal("120.4"), NOT_MET, "BMI 30.1 kg/m² is outside 18–30"),
        (Decimal("124"), NOT_MET, "BMI 31.0 kg/m² is outside 18–30"),
    ],
)
def test_bmi_limits_18_and_30_are_inclusive(weight: Decimal, verdict: Verdict, reason: str) -> None:
    facts = eligible_facts(weight_kg=weight, height_cm=Decimal("200"))
    assert_result(result_of("I3", facts), verdict, reason)


def test_bmi_is_compared_unrounded_and_the_message_shows_why() -> None:
    facts = eligible_facts(weight_kg=Decimal("120.1"), height_cm=Decimal("200"))  # BMI 30.025

    assert_result(result_of("I3", facts), NOT_MET, "BMI 30.0 (30.0250 unrounded) kg/m² is outside 18–30")


@pytest.mark.parametrize(
    ("weight", "verdict", "reason"),
    [  # height 145 cm keeps BMI near 19
        (Decimal("39.9"), NOT_MET, "Weight 39.9 kg is below 40"),
        (Decimal("40"), MET, "Weight 40 kg"),
    ],
)
def test_weight_must_be_at_least_40_kg(weight: Decimal, verdict: Verdict, reason: str) -> None:
    facts = eligible_facts(weight_kg=weight, height_cm=Decimal("145"))
    assert_result(result_of("I3", facts), verdict, reason)


# ---------------------------------------------------------------------------------------------
# I4 osteoporosis at high fracture risk ("at least one of")
# ---------------------------------------------------------------------------------------------


def test_without_any_qualifying_feature_i4_is_not_met_and_says_why() -> None:
    result = result_of("I4", without_i4_feature())

    assert result.verdict is NOT_MET
    assert result.reason.startswith("No qualifying feature: no fragility fracture; ")
    assert "lowest T-score -2.8 is not below -3.0" in result.reason
    assert "FRAX major 18% is not above 30% and hip 3.2% is not above 4.5%" in result.reason
    assert "glucocorticoid 0 mg/day is below 7.5" in result.reason


@pytest.mark.parametrize(
    ("field", "value", "verdict", "reason"),
    [
        ("t_score_lumbar_l1_l4", Decimal("-3.0"), NOT_MET, "lowest T-score -3.0 is not below -3.0"),
        ("t_score_lumbar_l1_l4", Decimal("-3.1"), MET, "T-score -3.1 at lumbar spine L1-L4 is below -3.0"),
        ("t_score_total_hip", Decimal("-3.0"), NOT_MET, "lowest T-score -3.0 is not below -3.0"),
        ("t_score_total_hip", Decimal("-3.1"), MET, "T-score -3.1 at total hip is below -3.0"),
        ("t_score_femoral_neck", Decimal("-3.0"), NOT_MET, "lowest T-score -3.0 is not below -3.0"),
        ("t_score_femoral_neck", Decimal("-3.1"), MET, "T-score -3.1 at femoral neck is below -3.0"),
    ],
)
def test_t_score_qualifies_only_strictly_below_minus_3(
    field: str, value: Decimal, verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("I4", without_i4_feature(**{field: value})), verdict, reason)


@pytest.mark.parametrize(
    ("field", "value", "verdict", "reason"),
    [
        ("frax_major_pct", Decimal("30"), NOT_MET, "FRAX major 30% is not above 30%"),
        ("frax_major_pct", Decimal("30.1"), MET, "FRAX major osteoporotic fracture risk 30.1% is above 30%"),
        ("frax_hip_pct", Decimal("4.5"), NOT_MET, "hip 4.5% is not above 4.5%"),
        ("frax_hip_pct", Decimal("4.6"), MET, "FRAX hip fracture risk 4.6% is above 4.5%"),
    ],
)
def test_frax_qualifies_only_above_30_major_or_4_5_hip(
    field: str, value: Decimal, verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("I4", without_i4_feature(**{field: value})), verdict, reason)


@pytest.mark.parametrize(
    ("fracture", "verdict", "reason"),
    [
        (
            Fracture(TWO_YEARS_BEFORE, "radius", fragility=True),
            MET,
            "fragility fracture (radius) on 2023-06-16",
        ),
        (
            Fracture(date(2023, 6, 15), "radius", fragility=True),
            NOT_MET,
            "latest fragility fracture on 2023-06-15 is more than 24 months before screening",
        ),
        (Fracture(date(2025, 1, 10), "tibia", fragility=False), NOT_MET, "no fragility fracture"),
        (
            Fracture(date(2015, 1, 10), "hip", on_anti_osteoporosis_treatment=True),
            MET,
            "fracture (hip) on 2015-01-10 while on anti-osteoporosis treatment",
        ),
    ],
)
def test_fracture_branches_of_i4_at_the_two_year_edge(fracture: Fracture, verdict: Verdict, reason: str) -> None:
    assert_result(result_of("I4", without_i4_feature(fractures=(fracture,))), verdict, reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"multiple_site_fracture_history": True}, "history of multiple-site fractures"),
        ({"high_fall_risk": True}, "high risk of falling"),
    ],
)
def test_multiple_site_fractures_or_high_fall_risk_each_qualify_for_i4(changes: dict[str, Any], reason: str) -> None:
    assert_result(result_of("I4", without_i4_feature(**changes)), MET, reason)


def test_i4_reason_lists_every_branch_that_holds() -> None:
    result = result_of("I4", eligible_facts(high_fall_risk=True, frax_hip_pct=Decimal("5")))

    assert result.verdict is MET
    assert result.reason == (
        "Qualifies through: T-score -3.4 at lumbar spine L1-L4 is below -3.0; high risk of falling; "
        "FRAX hip fracture risk 5% is above 4.5%"
    )


def test_i4_is_missing_data_when_no_branch_holds_yet_and_some_are_unrecorded() -> None:
    result = evaluate(CRITERIA, without_i4_feature(t_score_femoral_neck=None, fractures=None))

    assert result.result_for("I4").verdict is MISSING
    assert "fracture history not recorded" in result.result_for("I4").reason
    assert "T-score at femoral neck not recorded" in result.result_for("I4").reason
    assert result.missing == ("I4",)


def test_i4_is_met_by_one_branch_even_when_others_are_unrecorded() -> None:
    facts = eligible_facts(fractures=None, high_fall_risk=None, frax_major_pct=None, t_score_total_hip=None)

    assert_result(result_of("I4", facts), MET, "T-score -3.4 at lumbar spine L1-L4 is below -3.0")


# ---------------------------------------------------------------------------------------------
# The I4 / E2 glucocorticoid tension
# ---------------------------------------------------------------------------------------------


def glucocorticoid_only(dose: str = "10", months: str = "6", **changes: Any) -> ScreeningFacts:
    return without_i4_feature(
        glucocorticoid_dose_mg_per_day=Decimal(dose),
        glucocorticoid_duration_months=Decimal(months),
        **changes,
    )


def test_i4_met_only_through_glucocorticoids_needs_the_investigators_judgment() -> None:
    result = evaluate(CRITERIA, glucocorticoid_only(judgments=judgments_with()))
    i4 = result.result_for("I4")

    assert i4.verdict is NEEDS_JUDGMENT
    assert "Qualifies only through current glucocorticoid use: glucocorticoid 10 mg/day" in i4.reason
    assert "awaiting investigator's judgment on: primary (not glucocorticoid-induced) osteoporosis" in i4.reason
    assert result.pending_judgment == ("I4",)
    assert result.eligible is False


def test_e2_points_the_investigator_at_drug_induced_osteoporosis_when_glucocorticoids_are_recorded() -> None:
    no_e2_answer = {code: True for code in JUDGMENT_CODES if code != "E2"}

    pending = result_of("E2", glucocorticoid_only(judgments=no_e2_answer))

    assert_result(pending, NEEDS_JUDGMENT, "Glucocorticoid 10 mg/day (prednisolone-equivalent) for 6 months")
    assert "consider drug-induced osteoporosis" in pending.reason
    assert result_of("E2", eligible_facts(judgments=no_e2_answer)).reason == (
        "Awaiting investigator's judgment on: Secondary osteoporosis"
    )


@pytest.mark.parametrize(
    ("answer", "verdict", "reason"),
    [
        (True, MET, "investigator confirmed the criterion is satisfied"),
        (False, NOT_MET, "investigator judged the criterion is not satisfied"),
    ],
)
def test_investigators_answer_on_i4_settles_the_glucocorticoid_case(
    answer: bool, verdict: Verdict, reason: str
) -> None:
    result = result_of("I4", glucocorticoid_only(judgments=judgments_with(I4=answer)))

    assert_result(result, verdict, reason)
    assert result.judgment_applied is True


def test_glucocorticoids_alongside_another_feature_need_no_judgment_for_i4() -> None:
    facts = glucocorticoid_only(t_score_lumbar_l1_l4=Decimal("-3.4"), judgments=judgments_with())
    result = result_of("I4", facts)

    assert_result(result, MET, "T-score -3.4 at lumbar spine L1-L4 is below -3.0")
    assert "glucocorticoid 10 mg/day (prednisolone-equivalent) for 6 months" in result.reason
    assert result.judgment_applied is False


@pytest.mark.parametrize(
    ("dose", "months", "verdict", "reason"),
    [
        ("7.4", "12", NOT_MET, "glucocorticoid 7.4 mg/day is below 7.5"),
        ("7.5", "3", NOT_MET, "for 3 months is not over 3 months"),
        ("7.5", "3.1", NEEDS_JUDGMENT, "glucocorticoid 7.5 mg/day (prednisolone-equivalent) for 3.1 months"),
    ],
)
def test_glucocorticoid_branch_needs_at_least_7_5_mg_for_over_3_months(
    dose: str, months: str, verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("I4", glucocorticoid_only(dose, months)), verdict, reason)


# ---------------------------------------------------------------------------------------------
# E8 prior bone medication and E16 other trials: calendar-month windows
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2025, 6, 16), 6, date(2024, 12, 16)),
        (date(2025, 6, 16), 24, date(2023, 6, 16)),
        (date(2025, 8, 31), 6, date(2025, 2, 28)),  # clamped to the end of February
        (date(2024, 8, 31), 6, date(2024, 2, 29)),  # leap year
        (date(2025, 3, 31), 1, date(2025, 2, 28)),
        (date(2025, 1, 15), 1, date(2024, 12, 15)),  # across the year
        (date(2025, 1, 15), 0, date(2025, 1, 15)),
    ],
)
def test_months_before_counts_calendar_months_and_clamps_to_month_end(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


def test_months_before_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        months_before(SCREENING, -1)


@pytest.mark.parametrize(
    ("changes", "verdict", "reason"),
    [
        (
            {"last_pth_analog_date": SIX_MONTHS_BEFORE},
            NOT_MET,
            "PTH analog last given on 2024-12-16, within 6 months before screening (on or after 2024-12-16)",
        ),
        ({"last_pth_analog_date": date(2024, 12, 15)}, MET, "more than 6 months before screening"),
        (
            {"last_rankl_inhibitor_date": ONE_YEAR_BEFORE},
            NOT_MET,
            "RANKL inhibitor last given on 2024-06-16, within 12 months before screening",
        ),
        ({"last_rankl_inhibitor_date": date(2024, 6, 15)}, MET, "more than 12 months before screening"),
        (
            {"last_iv_bisphosphonate_date": TWO_YEARS_BEFORE},
            NOT_MET,
            "Intravenous bisphosphonate last given on 2023-06-16, within 24 months before screening",
        ),
        ({"last_iv_bisphosphonate_date": date(2023, 6, 15)}, MET, "more than 24 months before screening"),
    ],
)
def test_pth_rankl_and_iv_bisphosphonate_windows_include_their_first_day(
    changes: dict[str, Any], verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("E8", eligible_facts(**changes)), verdict, reason)


@pytest.mark.parametrize(
    ("cumulative", "last_dose", "verdict", "reason"),
    [
        ("36", date(2015, 1, 1), NOT_MET, "Cumulative oral bisphosphonate use 36 months is ≥ 36 months"),
        ("35.9", date(2015, 1, 1), MET, "last dose more than 6 months before screening"),
        ("35.9", SIX_MONTHS_BEFORE, NOT_MET, "with the last dose on 2024-12-16, within 6 months"),
        ("3.1", SIX_MONTHS_BEFORE, NOT_MET, "Oral bisphosphonate for 3.1 months (more than 3, less than 36)"),
        ("3.1", date(2024, 12, 15), MET, "last dose more than 6 months before screening"),
        ("3", date(2025, 6, 1), MET, "oral bisphosphonate for 3 months (not more than 3)"),
        ("3.1", None, MISSING, "Date of last oral bisphosphonate dose not recorded"),
        (None, date(2025, 6, 1), MISSING, "Cumulative oral bisphosphonate use (months) not recorded"),
    ],
)
def test_oral_bisphosphonate_branches_at_their_edges(
    cumulative: str | None, last_dose: date | None, verdict: Verdict, reason: str
) -> None:
    facts = eligible_facts(
        oral_bisphosphonate_cumulative_months=None if cumulative is None else Decimal(cumulative),
        last_oral_bisphosphonate_date=last_dose,
    )
    assert_result(result_of("E8", facts), verdict, reason)


def test_prior_bone_treatment_is_missing_until_the_history_is_taken() -> None:
    facts = eligible_facts(bone_treatment_history_recorded=False)

    assert_result(result_of("E8", facts), MISSING, "Prior anti-osteoporosis treatment history not recorded")


@pytest.mark.parametrize(
    ("screening", "last_pth", "verdict"),
    [(date(2025, 8, 31), date(2025, 2, 28), NOT_MET), (date(2025, 8, 31), date(2025, 2, 27), MET)],
)
def test_six_month_window_from_a_31st_starts_at_the_end_of_a_short_month(
    screening: date, last_pth: date, verdict: Verdict
) -> None:
    facts = eligible_facts(screening_date=screening, last_pth_analog_date=last_pth)
    assert result_of("E8", facts).verdict is verdict


@pytest.mark.parametrize(
    ("changes", "verdict", "reason"),
    [
        (
            {"last_other_trial_date": SIX_MONTHS_BEFORE},
            NOT_MET,
            "Last participation in another clinical trial on 2024-12-16, within 6 months before screening",
        ),
        ({"last_other_trial_date": date(2024, 12, 15)}, MET, "more than 6 months before screening"),
        ({}, MET, "No participation in another clinical trial"),
        (
            {"other_trial_history_recorded": False},
            MISSING,
            "Participation in other clinical trials not recorded",
        ),
    ],
)
def test_another_trial_within_six_months_before_screening_excludes(
    changes: dict[str, Any], verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("E16", eligible_facts(**changes)), verdict, reason)


# ---------------------------------------------------------------------------------------------
# E6, E7, E9, E10 objective exclusions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "changes", "reason"),
    [
        ("E6", {"transplant_or_radiation": True}, "Transplant or radiation: yes (not allowed)"),
        ("E7", {"prior_cell_therapy": True}, "Previous cell therapy: yes (not allowed)"),
    ],
)
def test_transplant_radiation_or_previous_cell_therapy_excludes(
    code: str, changes: dict[str, Any], reason: str
) -> None:
    assert_result(result_of(code, eligible_facts(**changes)), NOT_MET, reason)


@pytest.mark.parametrize(
    ("changes", "verdict", "reason"),
    [
        (
            {"measurable_lumbar_vertebrae": 1},
            NOT_MET,
            "Only 1 lumbar vertebra measurable by DXA (fewer than 2)",
        ),
        ({"measurable_lumbar_vertebrae": 2}, MET, "2 lumbar vertebrae measurable by DXA"),
        ({"dxa_impeded": True}, NOT_MET, "Height, weight or body size impedes accurate DXA measurement"),
    ],
)
def test_dxa_needs_two_measurable_vertebrae_and_an_unimpeded_scan(
    changes: dict[str, Any], verdict: Verdict, reason: str
) -> None:
    assert_result(result_of("E9", eligible_facts(**changes)), verdict, reason)


@pytest.mark.parametrize(
    ("changes", "verdict", "reason"),
    [
        ({"hbv_dna_cps_per_ml": Decimal("1200")}, NOT_MET, "HBV-DNA 1,200 cps/mL is ≥ 1,000"),
        ({"hbv_dna_cps_per_ml": Decimal("1000"), "hbv_dna_uln": Decimal("2000")}, NOT_MET, "is ≥ 1,000"),
        ({"hbv_dna_cps_per_ml": Decimal("999"), "hbv_dna_uln": Decimal("2000")}, MET, "HBV-DNA 999 cps/mL"),
        (
            {"hbv_dna_cps_per_ml": Decimal("501")},
            NOT_MET,
            "HBV-DNA 501 cps/mL is above the upper limit of normal (500)",
        ),
        ({"hbv_dna_cps_per_ml": Decimal("500")}, MET, "HBV-DNA 500 cps/mL"),
        (
            {"hcv_antibody_positive": True, "hcv_rna_above_uln": True},
            NOT_MET,
            "HCV antibody positive and HCV RNA above the upper limit of normal",
        ),
        (
            {"hcv_antibody_positive": True, "hcv_rna_above_uln": False},
            MET,
            "HCV antibody positive but HCV RNA not above the upper limit of normal",
        ),
        ({"hcv_antibody_positive": True}, MISSING, "HCV RNA not recorded (HCV antibody positive)"),
        ({"syphilis_antibody_positive": True}, NOT_MET, "Syphilis antibody positive"),
        ({"hiv_antibody_positive": True}, NOT_MET, "HIV antibody positive"),
    ],
)
def test_infection_serology_exclusions(changes: dict[str, Any], verdict: Verdict, reason: str) -> None:
    assert_result(result_of("E10", eligible_facts(**changes)), verdict, reason)


# ---------------------------------------------------------------------------------------------
# E13 thyroid, E14 liver and kidney: lab thresholds plus the investigator's part
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tsh", "t4_in_range", "verdict", "reason"),
    [
        ("0.26", True, NOT_MET, "TSH 0.26 μIU/mL is below the normal range (lower limit 0.27)"),
        ("0.27", True, MET, "TSH 0.27 μIU/mL"),
        ("5.5", False, MET, "TSH 5.5 μIU/mL is above the normal range (upper limit 4.2) but not above 5.5"),
        (
            "5.6",
            False,
            NOT_MET,
            "TSH 5.6 μIU/mL is above 5.5 (and not above 10.0) with serum T4 outside the normal range",
        ),
        ("5.6", True, MET, "TSH 5.6 μIU/mL is above 5.5 but serum T4 is within the normal range"),
        ("5.6", None, MISSING, "Serum T4 not recorded (TSH 5.6 μIU/mL is above 5.5)"),
        ("10.0", False, NOT_MET, "TSH 10.0 μIU/mL is above 5.5 (and not above 10.0)"),
        ("10.0", True, MET, "serum T4 is within the normal range"),
        ("10.1", True, NOT_MET, "TSH 10.1 μIU/mL is above 10.0"),
    ],
)
def test_thyroid_exclusion_by_tsh_band_and_t4(
    tsh: str, t4_in_range: bool | None, verdict: Verdict, reason: str
) -> None:
    facts = eligible_facts(tsh=Decimal(tsh), t4_in_range=t4_in_range)
    assert_result(result_of("E13", facts), verdict, reason)


@pytest.mark.parametrize(
    ("field", "value", "verdict", "reason"),
    [
        ("ast_x_uln", "1.9", MET, "AST 1.9×ULN"),
        ("ast_x_uln", "2.0", NOT_MET, "AST 2.0×ULN is ≥ 2.0×ULN"),
        ("alt_x_uln", "1.9", MET, "ALT 1.9×ULN"),
        ("alt_x_uln", "2.0", NOT_MET, "ALT 2.0×ULN is ≥ 2.0×ULN"),
        ("alp_x_uln", "1.4", MET, "ALP 1.4×ULN"),
        ("alp_x_uln", "1.5", NOT_MET, "ALP 1.5×ULN is ≥ 1.5×ULN"),
        ("bilirubin_x_uln", "1.4", MET, "Total bilirubin 1.4×ULN"),
        ("bilirubin_x_uln", "1.5", NOT_MET, "Total bilirubin 1.5×ULN is ≥ 1.5×ULN"),
        ("egfr", "59.9", NOT_MET, "eGFR 59.9 mL/min/1.73 m² is below 60"),
        ("egfr", "60", MET, "eGFR 60 mL/min/1.73 m²"),
    ],
)
def test_liver_and_kidney_thresholds(field: str, value: str, verdict: Verdict, reason: str) -> None:
    assert_result(result_of("E14", eligible_facts(**{field: Decimal(value)})), verdict, reason)


GILBERT = DocumentedDiagnosis(by="Wang Fang", on=date(2025, 6, 10))
WAIVED = "waived: Gilbert's syndrome documented by Wang Fang on 2025-06-10"


@pytest.mark.parametrize(
    ("bilirubin", "gilbert", "verdict", "reason"),
    [
        ("1.4", None, MET, "Total bilirubin 1.4×ULN"),
        ("1.5", None, NOT_MET, "Total bilirubin 1.5×ULN is ≥ 1.5×ULN"),
        ("2.0", None, NOT_MET, "Total bilirubin 2.0×ULN is ≥ 1.5×ULN"),
        ("1.4", GILBERT, MET, "Total bilirubin 1.4×ULN; eGFR"),  # below the limit: nothing to waive
        ("1.5", GILBERT, MET, f"Total bilirubin 1.5×ULN is ≥ 1.5×ULN, {WAIVED}"),
        ("2.0", GILBERT, MET, f"Total bilirubin 2.0×ULN is ≥ 1.5×ULN, {WAIVED}"),
        (None, GILBERT, MISSING, "Total bilirubin not recorded"),  # the waiver is of the limit, not of the test
    ],
)
def test_a_documented_gilbert_syndrome_waives_the_bilirubin_limit(bilirubin, gilbert, verdict, reason) -> None:
    value = None if bilirubin is None else Decimal(bilirubin)
    result = result_of("E14", eligible_facts(bilirubin_x_uln=value, gilbert_syndrome=gilbert))

    assert_result(result, verdict, reason)
    assert (WAIVED in result.reason) is (verdict is MET and value is not None and value >= Decimal("1.5"))


@pytest.mark.parametrize(
    ("field", "value", "verdict", "reason"),
    [
        ("alt_x_uln", "2.5", NOT_MET, "ALT 2.5×ULN is ≥ 2.0×ULN"),
        ("alt_x_uln", "1.9", MET, "ALT 1.9×ULN"),
        ("ast_x_uln", "2.0", NOT_MET, "AST 2.0×ULN is ≥ 2.0×ULN"),
        ("ast_x_uln", "1.9", MET, "AST 1.9×ULN"),
        ("alp_x_uln", "1.5", NOT_MET, "ALP 1.5×ULN is ≥ 1.5×ULN"),
        ("alp_x_uln", "1.4", MET, "ALP 1.4×ULN"),
        ("egfr", "59.9", NOT_MET, "eGFR 59.9 mL/min/1.73 m² is below 60"),
    ],
)
def test_gilbert_syndrome_waives_nothing_but_the_bilirubin(field: str, value: str, verdict: Verdict, reason: str):
    facts = eligible_facts(**{field: Decimal(value)}, bilirubin_x_uln=Decimal("2.0"), gilbert_syndrome=GILBERT)
    assert_result(result_of("E14", facts), verdict, reason)


def test_without_the_protocol_parameter_a_documented_gilbert_syndrome_waives_nothing() -> None:
    data = next(c for c in CRITERIA_DATA if c["code"] == "E14")
    params = {k: v for k, v in data["params"].items() if k != "gilbert_waives_bilirubin"}
    e14 = CriterionSpec.from_dict(data | {"params": params})
    facts = eligible_facts(bilirubin_x_uln=Decimal("2.0"), gilbert_syndrome=GILBERT)

    assert_result(evaluate([e14], facts).result_for("E14"), NOT_MET, "Total bilirubin 2.0×ULN is ≥ 1.5×ULN")


def test_the_gilbert_parameter_must_be_true_or_false() -> None:
    data = next(c for c in CRITERIA_DATA if c["code"] == "E14")
    e14 = CriterionSpec.from_dict(data | {"params": {**data["params"], "gilbert_waives_bilirubin": "yes"}})

    with pytest.raises(EligibilityConfigError, match="'gilbert_waives_bilirubin' must be true or false"):
        validate_criteria([e14])


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: DocumentedDiagnosis(by=" ", on=date(2025, 6, 10)), ValueError),
        (lambda: DocumentedDiagnosis(by="Wang Fang", on="2025-06-10"), TypeError),
        (lambda: eligible_facts(gilbert_syndrome=True), TypeError),
    ],
)
def test_a_documented_diagnosis_names_who_and_a_date(make, error) -> None:
    with pytest.raises(error):
        make()


def test_a_lab_breach_excludes_even_when_the_investigator_confirmed_the_judgment_part() -> None:
    result = result_of("E14", eligible_facts(ast_x_uln=Decimal("2.5"), judgments=judgments_with(E14=True)))

    assert_result(result, NOT_MET, "AST 2.5×ULN is ≥ 2.0×ULN")
    assert result.judgment_applied is False


# ---------------------------------------------------------------------------------------------
# Several failures, missing data, the judgment flow
# ---------------------------------------------------------------------------------------------


def test_every_failing_criterion_is_listed_as_unmet() -> None:
    facts = eligible_facts(
        date_of_birth=date(1980, 6, 17),
        weight_kg=Decimal("124"),
        height_cm=Decimal("200"),
        prior_cell_therapy=True,
        hbv_dna_cps_per_ml=Decimal("1200"),
        egfr=Decimal("50"),
    )
    result = evaluate(CRITERIA, facts)

    assert result.eligible is False
    assert result.unmet == ("I2", "I3", "E7", "E10", "E14")
    assert result.result_for("I2").reason == "Age 44 is below 45"
    assert result.result_for("I3").reason == "BMI 31.0 kg/m² is outside 18–30"
    assert result.result_for("E14").reason == "eGFR 50 mL/min/1.73 m² is below 60"
    assert result.missing == result.pending_judgment == ()


def test_data_not_entered_is_listed_as_missing_and_blocks_eligibility() -> None:
    result = evaluate(CRITERIA, eligible_facts(weight_kg=None, tsh=None))

    assert result.eligible is False
    assert result.missing == ("I3", "E13")
    assert result.result_for("I3").reason == "Weight not recorded"
    assert result.result_for("E13").reason == "TSH not recorded; investigator's judgment recorded"
    assert result.unmet == ()


def test_nothing_recorded_means_everything_is_missing_or_awaits_judgment() -> None:
    result = evaluate(CRITERIA, ScreeningFacts())

    assert result.eligible is False
    assert result.unmet == ()
    assert result.missing == ("I1", "I2", "I3", "I4", "E6", "E7", "E8", "E9", "E10", "E13", "E14", "E16")
    assert result.pending_judgment == ("E2", "E3", "E4", "E5", "E11", "E12", "E15", "E17")
    assert "investigator's judgment also pending" in result.result_for("E13").reason


def test_judgment_criteria_wait_for_the_investigator_and_block_eligibility() -> None:
    result = evaluate(CRITERIA, eligible_facts(judgments={}))

    assert result.pending_judgment == JUDGMENT_CODES
    assert result.eligible is False
    assert result.result_for("E3").reason == "Awaiting investigator's judgment on: Malignancy"
    assert result.result_for("E13").reason == (
        "TSH 2.1 μIU/mL; awaiting investigator's judgment on: current uncontrolled thyroid disease"
    )


def test_confirmed_judgments_make_the_participant_eligible() -> None:
    result = evaluate(CRITERIA, eligible_facts(judgments=judgments_with()))

    assert result.eligible is True
    assert result.result_for("E12").reason == (
        "Investigator confirmed the exclusion does not apply: Neuro/psychiatric history"
    )
    assert result.result_for("E12").judgment_applied is True


def test_investigator_judging_an_exclusion_present_makes_it_unmet() -> None:
    result = evaluate(CRITERIA, eligible_facts(judgments=judgments_with(E12=False)))

    assert result.unmet == ("E12",)
    assert result.result_for("E12").reason == "Investigator judged the exclusion applies: Neuro/psychiatric history"
    assert result.eligible is False


def test_investigator_judging_an_exclusion_present_decides_even_with_data_missing() -> None:
    result = result_of("E13", eligible_facts(tsh=None, judgments=judgments_with(E13=False)))

    assert_result(result, NOT_MET, "investigator judged the exclusion applies: current uncontrolled thyroid")


def test_confirmed_judgment_does_not_hide_missing_data() -> None:
    result = result_of("E14", eligible_facts(egfr=None, judgments=judgments_with(E14=True)))

    assert_result(result, MISSING, "eGFR not recorded; investigator's judgment recorded")


# ---------------------------------------------------------------------------------------------
# The engine: registry, protocol data errors, input validation
# ---------------------------------------------------------------------------------------------


def test_an_unknown_rule_key_is_refused_naming_the_key_and_the_criterion() -> None:
    criteria = [*CRITERIA, CriterionSpec("X1", "inclusion", "no_such_rule", {})]

    with pytest.raises(UnknownRuleError, match=r"Criterion X1 uses unknown eligibility rule 'no_such_rule'"):
        evaluate(criteria, eligible_facts())


def test_a_missing_rule_parameter_is_refused_naming_the_criterion_and_the_parameter() -> None:
    criteria = [CriterionSpec("I3", "inclusion", "weight_bmi", {"min_weight_kg": 40, "max_bmi": 30})]

    with pytest.raises(
        EligibilityConfigError, match=r"Criterion I3 \(rule 'weight_bmi'\): missing parameter 'min_bmi'"
    ):
        validate_criteria(criteria)


def test_the_protocol_criteria_validate_and_every_rule_is_registered() -> None:
    validate_criteria(CRITERIA)

    assert {c["rule"] for c in CRITERIA_DATA} <= set(known_rules())


def test_a_rule_key_cannot_be_registered_twice() -> None:
    with pytest.raises(EligibilityConfigError, match="'weight_bmi' is already registered"):

        @rule("weight_bmi")
        def another(facts: ScreeningFacts, params: Any) -> Outcome:  # pragma: no cover
            return Outcome(MET, "")


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ([], "No eligibility criteria given"),
        ([CRITERIA[0], CRITERIA[0]], "Criterion code I1 appears twice"),
    ],
)
def test_empty_or_duplicated_criteria_are_refused(criteria: list[CriterionSpec], message: str) -> None:
    with pytest.raises(EligibilityConfigError, match=message):
        evaluate(criteria, eligible_facts())


def test_a_criterion_kind_other_than_inclusion_or_exclusion_is_refused() -> None:
    with pytest.raises(EligibilityConfigError, match="kind must be 'inclusion' or 'exclusion'"):
        CriterionSpec("I1", "incl", "boolean_fact", {})


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"weight_kg": float("nan")}, ValueError),
        ({"weight_kg": True}, TypeError),
        ({"weight_kg": "heavy"}, ValueError),
        ({"height_cm": 0}, ValueError),
        ({"measurable_lumbar_vertebrae": -1}, ValueError),
        ({"judgments": {"E3": "yes"}}, TypeError),
    ],
)
def test_screening_facts_refuse_values_that_are_not_plain_numbers_or_answers(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ScreeningFacts(**changes)


def test_screening_facts_hold_numbers_as_exact_decimals() -> None:
    facts = ScreeningFacts(weight_kg=57.5, egfr=60, tsh="2.10")  # type: ignore[arg-type]

    assert (facts.weight_kg, facts.egfr, facts.tsh) == (Decimal("57.5"), Decimal("60"), Decimal("2.10"))
