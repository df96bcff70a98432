"""Eligibility engine: pure functions over plain values (no Django import).

A protocol's criteria are data: each ``CriterionSpec`` names a *rule* (a key in the rule
registry) and the rule's *params* (limits, windows). ``evaluate(criteria, facts)`` runs every
criterion against one participant's ``ScreeningFacts`` and returns an ``EligibilityResult``.
Another protocol carries other criteria, or the same rules with other params, without any
change here; a new kind of criterion is one new function decorated with ``@rule("key")``.

Verdict convention
------------------
A verdict always answers "does the participant satisfy this criterion's requirement?":

* ``MET``            - yes. For an *exclusion* criterion this means the exclusion condition is
                       ABSENT (E10 MET = no exclusionary serology).
* ``NOT_MET``        - no. For an exclusion criterion: the exclusion condition is PRESENT
                       (E10 with HBV-DNA 1,200 cps/mL -> NOT_MET, "HBV-DNA 1,200 cps/mL is ≥ 1,000").
* ``NEEDS_JUDGMENT`` - the data-driven part is satisfied, but part of the criterion is the
                       investigator's call and that call has not been recorded yet.
* ``MISSING_DATA``   - something the criterion needs has not been entered, so it cannot be decided.

Precedence inside one criterion: a breach found in the data (NOT_MET) wins over anything else,
including an investigator's confirmation; then an investigator's "not satisfied" judgment
(NOT_MET); then missing data (MISSING_DATA); then a judgment still to be given (NEEDS_JUDGMENT).
A participant is eligible only when every criterion is MET, so nobody is eligible while
anything is missing or awaiting judgment.

Investigator judgments
----------------------
``ScreeningFacts.judgments`` maps a criterion code to the investigator's confirmed answer in the
same convention: ``True`` = the criterion is satisfied (for an exclusion: the condition is
absent), ``False`` = not satisfied. A judgment is only consulted for a criterion whose rule asks
for one in the evaluation at hand; it never overrides a breach found in the data (an AST of
2.5×ULN is NOT_MET for E14 even when the investigator answered ``True``).

Glucocorticoids: the I4 / E2 tension
------------------------------------
I4 accepts "currently using medications known to cause skeletal harm (prednisolone ≥7.5 mg/day
for over 3 months)" as a qualifying feature, while E2 excludes "drug-induced osteoporosis". When
I4 holds ONLY through that glucocorticoid branch, I4 is NEEDS_JUDGMENT until the investigator
confirms ``judgments["I4"]`` (True: primary osteoporosis at high fracture risk, the glucocorticoid
branch may qualify). E2 always needs the investigator's judgment, and its reason names recorded
high-dose glucocorticoid use so that drug-induced osteoporosis is considered. The two answers are
recorded separately: confirming E2 does not silently resolve I4.

Boundaries and dates
--------------------
* Age is in completed years on the screening date; the birthday itself counts (born 1980-06-16,
  screened 2025-06-16: age 45). A 29 February birthday is reached on 1 March in other years.
* BMI = weight_kg / (height_cm / 100)² computed exactly with ``Decimal``; limits are compared on
  that exact value, messages show it rounded half-up to 1 decimal place (with the unrounded value
  added when rounding alone would make it look on the other side of a limit).
* "Within N months before screening" uses calendar months: an event on or after
  ``months_before(screening_date, N)`` is inside the window. The day exactly N months before is
  INSIDE; the day before that is outside. ``months_before`` clamps to the end of a shorter month
  (6 months before 2025-08-31 is 2025-02-28). An event dated after the screening date is recent,
  so it is inside too. "Within the past year" is 12 months; "within 2 years" is 24 months.
* Strict and inclusive limits are taken exactly as worded: T-score ``< -3.0`` (-3.0 does not
  qualify), FRAX ``> 30`` / ``> 4.5``, glucocorticoid ``≥ 7.5`` mg/day for ``> 3`` months,
  HBV-DNA ``≥ 1,000`` or ``> ULN``, TSH ``> 5.5 and ≤ 10.0`` (with T4 out of range) or ``> 10.0``,
  AST/ALT ``≥ 2×ULN``, ALP/bilirubin ``≥ 1.5×ULN``, eGFR ``< 60``, oral bisphosphonate
  cumulative ``≥ 36`` months, or ``> 3`` and ``< 36`` months with the last dose within 6 months.

Gilbert's syndrome (E14)
------------------------
E14 excludes hepatic insufficiency "(excluding Gilbert's syndrome …)". Gilbert's raises unconjugated
bilirubin and nothing else, so with ``params.gilbert_waives_bilirubin`` true and an investigator's
documented diagnosis (``ScreeningFacts.gilbert_syndrome``: who and on which date), a total bilirubin
at or above the limit passes with the reason "waived: Gilbert's syndrome documented by <name> on
<date>". AST, ALT, ALP and eGFR are judged as always, and the bilirubin must still be recorded.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import math
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CriterionKind",
    "CriterionResult",
    "CriterionSpec",
    "DocumentedDiagnosis",
    "EligibilityConfigError",
    "EligibilityResult",
    "Fracture",
    "Outcome",
    "ScreeningFacts",
    "UnknownRuleError",
    "Verdict",
    "age_in_years",
    "bmi",
    "criteria_from_data",
    "evaluate",
    "get_rule",
    "known_rules",
    "months_before",
    "rule",
    "validate_criteria",
]


# --------------------------------------------------------------------------------------------
# Verdicts, errors
# --------------------------------------------------------------------------------------------


class Verdict(enum.StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NEEDS_JUDGMENT = "needs_judgment"
    MISSING_DATA = "missing"


class CriterionKind(enum.StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class EligibilityConfigError(ValueError):
    """The protocol's criteria cannot be evaluated as configured (a bug in the protocol data)."""


class UnknownRuleError(EligibilityConfigError, LookupError):
    """A criterion names a rule key that no function is registered under."""

    def __init__(self, key: str, code: str | None = None) -> None:
        self.key = key
        self.code = code
        where = f"Criterion {code} uses" if code else "There is"
        super().__init__(f"{where} unknown eligibility rule {key!r}; registered rules: {', '.join(known_rules())}.")


# --------------------------------------------------------------------------------------------
# Input: screening facts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fracture:
    """One fracture in the participant's history."""

    date: dt.date
    site: str
    on_anti_osteoporosis_treatment: bool = False
    fragility: bool = False


@dataclass(frozen=True)
class DocumentedDiagnosis:
    """A diagnosis an investigator documented: who (as shown in a reason) and on which date (the site's)."""

    by: str
    on: dt.date

    def __post_init__(self) -> None:
        if not isinstance(self.by, str) or not self.by.strip():
            raise ValueError(f"a documented diagnosis names who documented it, got {self.by!r}")
        if isinstance(self.on, dt.datetime) or not isinstance(self.on, dt.date):
            raise TypeError(f"a documented diagnosis has a date, got {self.on!r}")


_DECIMAL_FIELDS = frozenset(
    {
        "years_since_last_menses",
        "weight_kg",
        "height_cm",
        "t_score_lumbar_l1_l4",
        "t_score_total_hip",
        "t_score_femoral_neck",
        "frax_major_pct",
        "frax_hip_pct",
        "glucocorticoid_dose_mg_per_day",
        "glucocorticoid_duration_months",
        "ast_x_uln",
        "alt_x_uln",
        "alp_x_uln",
        "bilirubin_x_uln",
        "egfr",
        "tsh",
        "tsh_lower_limit",
        "tsh_upper_limit",
        "hbv_dna_cps_per_ml",
        "hbv_dna_uln",
        "oral_bisphosphonate_cumulative_months",
    }
)

# Yes/no facts that the generic ``boolean_fact`` rule may name.
_BOOLEAN_FIELDS = frozenset(
    {
        "natural_menopause",
        "multiple_site_fracture_history",
        "dxa_impeded",
        "high_fall_risk",
        "t4_in_range",
        "hcv_antibody_positive",
        "hcv_rna_above_uln",
        "syphilis_antibody_positive",
        "hiv_antibody_positive",
        "prior_cell_therapy",
        "transplant_or_radiation",
        "consent_signed",
    }
)


@dataclass(frozen=True)
class ScreeningFacts:
    """What screening recorded about one participant. ``None`` always means "not recorded".

    Numbers are ``Decimal`` (ints, floats and numeric strings are converted on construction;
    NaN, infinities and booleans are refused). Lab values relative to the upper limit of normal
    are multiples (``ast_x_uln=Decimal("2.0")`` is 2×ULN). Prior-treatment dates are the last
    dose; ``None`` there means "never" once ``bone_treatment_history_recorded`` is True, and
    "not recorded" before. The same holds for ``last_other_trial_date`` and
    ``other_trial_history_recorded``. ``fractures=()`` means "no fractures", ``None`` "history
    not taken".
    """

    # Demographics and menopause (I2). ``sex`` uses the SDTM codes "F", "M", "U".
    sex: str | None = None
    date_of_birth: dt.date | None = None
    screening_date: dt.date | None = None
    years_since_last_menses: Decimal | None = None
    natural_menopause: bool | None = None  # "primary" (not surgical/induced) menopause
    # Body size (I3).
    weight_kg: Decimal | None = None
    height_cm: Decimal | None = None
    # Fracture history and risk (I4).
    fractures: tuple[Fracture, ...] | None = None
    multiple_site_fracture_history: bool | None = None
    t_score_lumbar_l1_l4: Decimal | None = None
    t_score_total_hip: Decimal | None = None
    t_score_femoral_neck: Decimal | None = None
    high_fall_risk: bool | None = None
    frax_major_pct: Decimal | None = None
    frax_hip_pct: Decimal | None = None
    # Current glucocorticoid use, prednisolone-equivalent (I4, E2). Dose 0 = none.
    glucocorticoid_dose_mg_per_day: Decimal | None = None
    glucocorticoid_duration_months: Decimal | None = None
    # DXA feasibility (E9).
    measurable_lumbar_vertebrae: int | None = None
    dxa_impeded: bool | None = None
    # Liver and kidney (E14).
    ast_x_uln: Decimal | None = None
    alt_x_uln: Decimal | None = None
    alp_x_uln: Decimal | None = None
    bilirubin_x_uln: Decimal | None = None
    egfr: Decimal | None = None  # mL/min/1.73 m²
    # Thyroid (E13). TSH in μIU/mL; the lab's normal range for TSH.
    tsh: Decimal | None = None
    tsh_lower_limit: Decimal | None = None
    tsh_upper_limit: Decimal | None = None
    t4_in_range: bool | None = None
    # Serology (E10).
    hbv_dna_cps_per_ml: Decimal | None = None
    hbv_dna_uln: Decimal | None = None
    hcv_antibody_positive: bool | None = None
    hcv_rna_above_uln: bool | None = None
    syphilis_antibody_positive: bool | None = None
    hiv_antibody_positive: bool | None = None
    # Prior bone treatment (E8): last dose dates; PTH analogs include investigational ones.
    bone_treatment_history_recorded: bool = False
    last_pth_analog_date: dt.date | None = None
    last_rankl_inhibitor_date: dt.date | None = None
    oral_bisphosphonate_cumulative_months: Decimal | None = None
    last_oral_bisphosphonate_date: dt.date | None = None
    last_iv_bisphosphonate_date: dt.date | None = None
    # Other history (E6, E7, E16).
    prior_cell_therapy: bool | None = None
    transplant_or_radiation: bool | None = None
    other_trial_history_recorded: bool = False
    last_other_trial_date: dt.date | None = None
    # Consent (I1).
    consent_signed: bool | None = None
    # Investigator's confirmed answers per criterion code: True = criterion satisfied.
    judgments: Mapping[str, bool] = field(default_factory=dict)
    # Gilbert's syndrome as documented by an investigator (E14); None = not documented.
    gilbert_syndrome: DocumentedDiagnosis | None = None

    def __post_init__(self) -> None:
        for name in _DECIMAL_FIELDS:
            object.__setattr__(self, name, _to_decimal(getattr(self, name), name))
        for name in ("weight_kg", "height_cm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        vertebrae = self.measurable_lumbar_vertebrae
        if vertebrae is not None and (isinstance(vertebrae, bool) or not isinstance(vertebrae, int)):
            raise TypeError(f"measurable_lumbar_vertebrae must be an int, got {vertebrae!r}")
        if vertebrae is not None and vertebrae < 0:
            raise ValueError(f"measurable_lumbar_vertebrae must not be negative, got {vertebrae}")
        if self.fractures is not None:
            fractures = tuple(self.fractures)
            if not all(isinstance(f, Fracture) for f in fractures):
                raise TypeError("fractures must hold Fracture objects")
            object.__setattr__(self, "fractures", fractures)
        if self.gilbert_syndrome is not None and not isinstance(self.gilbert_syndrome, DocumentedDiagnosis):
            raise TypeError(f"gilbert_syndrome must be a DocumentedDiagnosis or None, got {self.gilbert_syndrome!r}")
        judgments = dict(self.judgments)
        for code, answer in judgments.items():
            if not isinstance(answer, bool):
                raise TypeError(f"judgment for {code} must be True or False, got {answer!r}")
        object.__setattr__(self, "judgments", types.MappingProxyType(judgments))


def _to_decimal(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        number = Decimal(str(value))  # the shortest repr: 4.5 -> Decimal("4.5"), not 4.5000000001…
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    else:
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


# --------------------------------------------------------------------------------------------
# Protocol data: criterion specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionSpec:
    """One protocol criterion: which rule evaluates it, with which params."""

    code: str
    kind: CriterionKind
    rule: str
    params: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    needs_judgment: bool = False  # informational: part of it may need the investigator

    def __post_init__(self) -> None:
        try:
            kind = CriterionKind(self.kind)
        except ValueError:
            raise EligibilityConfigError(
                f"Criterion {self.code}: kind must be 'inclusion' or 'exclusion', got {self.kind!r}"
            ) from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CriterionSpec:
        """Build a spec from the protocol file's ``{code, kind, text, rule, params, needs_judgment}``."""
        try:
            return cls(
                code=data["code"],
                kind=data["kind"],
                rule=data["rule"],
                params=data.get("params") or {},
                text=data.get("text", ""),
                needs_judgment=bool(data.get("needs_judgment", False)),
            )
        except KeyError as exc:
            raise EligibilityConfigError(f"Criterion data lacks {exc.args[0]!r}: {dict(data)!r}") from None


def criteria_from_data(items: Iterable[Mapping[str, Any]]) -> tuple[CriterionSpec, ...]:
    return tuple(CriterionSpec.from_dict(item) for item in items)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a rule returns.

    ``verdict``/``reason`` describe the part decided from data (MET, NOT_MET or MISSING_DATA).
    ``needs_judgment`` says the criterion also has a part the investigator decides; the engine then
    combines the verdict with ``facts.judgments[code]``. ``question`` is what the investigator is
    asked (defaults to the criterion's text).
    """

    verdict: Verdict
    reason: str
    needs_judgment: bool = False
    question: str = ""


@dataclass(frozen=True)
class CriterionResult:
    code: str
    kind: CriterionKind
    verdict: Verdict
    reason: str
    judgment_applied: bool = False  # the verdict rests on the investigator's recorded judgment


@dataclass(frozen=True)
class EligibilityResult:
    results: tuple[CriterionResult, ...]

    def _codes(self, verdict: Verdict) -> tuple[str, ...]:
        return tuple(r.code for r in self.results if r.verdict is verdict)

    @property
    def eligible(self) -> bool:
        return bool(self.results) and all(r.verdict is Verdict.MET for r in self.results)

    @property
    def unmet(self) -> tuple[str, ...]:
        """Codes of criteria the participant does not satisfy (the SDTM IE records)."""
        return self._codes(Verdict.NOT_MET)

    @property
    def missing(self) -> tuple[str, ...]:
        return self._codes(Verdict.MISSING_DATA)

    @property
    def pending_judgment(self) -> tuple[str, ...]:
        return self._codes(Verdict.NEEDS_JUDGMENT)

    def result_for(self, code: str) -> CriterionResult:
        for result in self.results:
            if result.code == code:
                return result
        raise KeyError(code)


# --------------------------------------------------------------------------------------------
# Rule registry and engine
# --------------------------------------------------------------------------------------------

RuleFunction = Callable[["ScreeningFacts", Mapping[str, Any]], Outcome]
_RULES: dict[str, RuleFunction] = {}


def rule(key: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under ``key`` (the ``rule`` named in protocol data)."""

    def register(function: RuleFunction) -> RuleFunction:
        if key in _RULES:
            raise EligibilityConfigError(f"Eligibility rule {key!r} is already registered")
        _RULES[key] = function
        return function

    return register


def known_rules() -> tuple[str, ...]:
    return tuple(sorted(_RULES))


def get_rule(key: str, *, code: str | None = None) -> RuleFunction:
    try:
        return _RULES[key]
    except KeyError:
        raise UnknownRuleError(key, code) from None


def evaluate(criteria: Iterable[CriterionSpec], facts: ScreeningFacts) -> EligibilityResult:
    """Evaluate every criterion, in order, against one participant's facts."""
    specs = tuple(criteria)
    if not specs:
        raise EligibilityConfigError("No eligibility criteria given; a trial without criteria enrolls nobody.")
    seen: set[str] = set()
    for spec in specs:
        if spec.code in seen:
            raise EligibilityConfigError(f"Criterion code {spec.code} appears twice")
        seen.add(spec.code)
    # Resolve every rule first: a typo in the protocol fails loudly before anything is evaluated.
    functions = [get_rule(spec.rule, code=spec.code) for spec in specs]
    results = []
    for spec, function in zip(specs, functions, strict=True):
        try:
            outcome = function(facts, spec.params)
        except EligibilityConfigError as exc:
            raise EligibilityConfigError(f"Criterion {spec.code} (rule {spec.rule!r}): {exc}") from exc
        results.append(_result(spec, outcome, facts.judgments.get(spec.code)))
    return EligibilityResult(tuple(results))


def validate_criteria(criteria: Iterable[CriterionSpec]) -> None:
    """Raise ``EligibilityConfigError`` if a criterion's rule is unknown or its params are unusable.

    Every rule reads its params before looking at any fact, so evaluating against empty facts
    checks them all.
    """
    evaluate(criteria, ScreeningFacts())


def _result(spec: CriterionSpec, outcome: Outcome, judgment: bool | None) -> CriterionResult:
    def done(verdict: Verdict, reason: str, judged: bool = False) -> CriterionResult:
        return CriterionResult(spec.code, spec.kind, verdict, _capitalise(reason), judged)

    verdict = outcome.verdict
    if verdict is Verdict.NEEDS_JUDGMENT:  # a rule that only asks: its data part is satisfied
        verdict = Verdict.MET
    if not (outcome.needs_judgment or outcome.verdict is Verdict.NEEDS_JUDGMENT):
        return done(verdict, outcome.reason)
    if verdict is Verdict.NOT_MET:
        return done(verdict, outcome.reason)
    question = outcome.question or spec.text or f"criterion {spec.code}"
    exclusion = spec.kind is CriterionKind.EXCLUSION
    if judgment is False:
        said = "the exclusion applies" if exclusion else "the criterion is not satisfied"
        return done(Verdict.NOT_MET, _join(outcome.reason, f"investigator judged {said}: {question}"), True)
    if verdict is Verdict.MISSING_DATA:
        note = "investigator's judgment also pending" if judgment is None else "investigator's judgment recorded"
        return done(verdict, _join(outcome.reason, note))
    if judgment is None:
        return done(Verdict.NEEDS_JUDGMENT, _join(outcome.reason, f"awaiting investigator's judgment on: {question}"))
    said = "the exclusion does not apply" if exclusion else "the criterion is satisfied"
    return done(Verdict.MET, _join(outcome.reason, f"investigator confirmed {said}: {question}"), True)


# --------------------------------------------------------------------------------------------
# Helpers: dates, numbers, params, messages
# --------------------------------------------------------------------------------------------


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to the end of a shorter month."""
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise ValueError(f"months must be a non-negative int, got {months!r}")
    year, month_index = divmod(day.year * 12 + day.month - 1 - months, 12)
    month = month_index + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _within_months_before(event: dt.date, screening: dt.date, months: int) -> bool:
    """Inside the window: on or after the day exactly ``months`` before screening (or later)."""
    return event >= months_before(screening, months)


def age_in_years(date_of_birth: dt.date, on: dt.date) -> int:
    """Completed years on ``on``; the birthday itself counts."""
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))


def bmi(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Exact-as-Decimal BMI in kg/m² (not rounded)."""
    metres = height_cm / 100
    return weight_kg / (metres * metres)


def _fmt(value: Decimal | int) -> str:
    """Human number: thousands separators, the recorded decimals (1,200; 4.5; -3.0)."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == value.to_integral_value() and int(value.as_tuple().exponent) >= 0:
        return f"{int(value):,}"
    return f"{value:,f}"


def _one_decimal(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _capitalise(text: str) -> str:
    """Upper-case the first letter, leaving abbreviations such as "eGFR" alone."""
    if text[1:2].isupper():
        return text
    return text[:1].upper() + text[1:]


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _sentence(parts: Iterable[str]) -> str:
    return _capitalise(_join(*parts))


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _param(params: Mapping[str, Any], name: str) -> Any:
    try:
        return params[name]
    except KeyError:
        raise EligibilityConfigError(f"missing parameter {name!r}") from None


def _num_param(params: Mapping[str, Any], name: str) -> Decimal:
    raw = _param(params, name)
    try:
        number = _to_decimal(raw, name)
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise EligibilityConfigError(f"parameter {name!r} must be a number, got {raw!r}")
    return number


def _whole_param(params: Mapping[str, Any], name: str) -> int:
    raw = _param(params, name)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise EligibilityConfigError(f"parameter {name!r} must be a whole non-negative number, got {raw!r}")
    return raw


def _bool_param(params: Mapping[str, Any], name: str, default: bool | None = None) -> bool:
    raw = params.get(name, default) if default is not None else _param(params, name)
    if not isinstance(raw, bool):
        raise EligibilityConfigError(f"parameter {name!r} must be true or false, got {raw!r}")
    return raw


def _str_param(params: Mapping[str, Any], name: str, default: str | None = None) -> str:
    raw = params.get(name, default) if default is not None else _param(params, name)
    if not isinstance(raw, str) or not raw.strip():
        raise EligibilityConfigError(f"parameter {name!r} must be a non-empty text, got {raw!r}")
    return raw.strip()


def _question_param(params: Mapping[str, Any]) -> str:
    """Optional ``question``: what the investigator confirms (defaults to the criterion's text)."""
    question = params.get("question", "")
    if not isinstance(question, str):
        raise EligibilityConfigError(f"parameter 'question' must be text, got {question!r}")
    return question.strip()


class _Checks:
    """Collects the parts of one criterion: breaches, missing data, passes."""

    def __init__(self) -> None:
        self.breaches: list[str] = []
        self.missing: list[str] = []
        self.passes: list[str] = []

    def breach(self, message: str) -> None:
        self.breaches.append(message)

    def miss(self, message: str) -> None:
        self.missing.append(message)

    def passed(self, message: str) -> None:
        self.passes.append(message)

    def outcome(self, *, needs_judgment: bool = False, question: str = "") -> Outcome:
        if self.breaches:
            return Outcome(Verdict.NOT_MET, _sentence(self.breaches + self.missing), needs_judgment, question)
        if self.missing:
            return Outcome(Verdict.MISSING_DATA, _sentence(self.missing), needs_judgment, question)
        return Outcome(Verdict.MET, _sentence(self.passes), needs_judgment, question)


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@rule("boolean_fact")
def boolean_fact(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """A yes/no fact must be ``required`` (true/false). Params: fact, required, label."""
    name = _str_param(params, "fact")
    if name not in _BOOLEAN_FIELDS:
        raise EligibilityConfigError(
            f"parameter 'fact' must name a yes/no screening fact ({', '.join(sorted(_BOOLEAN_FIELDS))}), got {name!r}"
        )
    required = _bool_param(params, "required")
    label = _capitalise(_str_param(params, "label", name.replace("_", " ")))
    value = getattr(facts, name)
    if value is None:
        return Outcome(Verdict.MISSING_DATA, f"{label}: not recorded")
    if value is required:
        return Outcome(Verdict.MET, f"{label}: {_yes_no(value)}")
    wanted = "required" if required else "not allowed"
    return Outcome(Verdict.NOT_MET, f"{label}: {_yes_no(value)} ({wanted})")


@rule("investigator_judgment")
def investigator_judgment(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Wholly the investigator's call. Optional param: question (defaults to the criterion's text)."""
    return Outcome(Verdict.MET, "", needs_judgment=True, question=_question_param(params))


@rule("age_sex_menopause")
def age_sex_menopause(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Sex, age range (inclusive, completed years at screening), years since menopause."""
    sex = _str_param(params, "sex").upper()
    min_age = _num_param(params, "min_age_years")
    max_age = _num_param(params, "max_age_years")
    min_years = _num_param(params, "min_years_since_menopause")
    require_natural = _bool_param(params, "require_natural_menopause", default=False)

    checks = _Checks()
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
            checks.breach(f"Age {age} is below {_fmt(min_age)}")
        elif age > max_age:
            checks.breach(f"Age {age} is above {_fmt(max_age)}")
        else:
            checks.passed(f"age {age} is within {_fmt(min_age)}–{_fmt(max_age)}")

    years = facts.years_since_last_menses
    if years is None:
        checks.miss("Years since last menses not recorded")
    elif years < min_years:
        checks.breach(f"{_fmt(years)} years since last menses is below {_fmt(min_years)}")
    else:
        checks.passed(f"{_fmt(years)} years since last menses")

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
    min_weight = _num_param(params, "min_weight_kg")
    min_bmi = _num_param(params, "min_bmi")
    max_bmi = _num_param(params, "max_bmi")

    checks = _Checks()
    weight, height = facts.weight_kg, facts.height_cm
    if weight is None:
        checks.miss("Weight not recorded")
    elif weight < min_weight:
        checks.breach(f"Weight {_fmt(weight)} kg is below {_fmt(min_weight)}")
    else:
        checks.passed(f"Weight {_fmt(weight)} kg")
    if height is None:
        checks.miss("Height not recorded (needed for BMI)")
    if weight is not None and height is not None:
        exact = bmi(weight, height)
        inside = min_bmi <= exact <= max_bmi
        shown = _one_decimal(exact)
        text = f"{shown}"
        if (min_bmi <= shown <= max_bmi) != inside:
            text = f"{shown} ({exact.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)} unrounded)"
        if inside:
            checks.passed(f"BMI {text} kg/m² is within {_fmt(min_bmi)}–{_fmt(max_bmi)}")
        else:
            checks.breach(f"BMI {text} kg/m² is outside {_fmt(min_bmi)}–{_fmt(max_bmi)}")
    return checks.outcome()


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
    if _within_months_before(latest.date, facts.screening_date, months):
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
        f"T-score {_fmt(value)} at {site} is below {_fmt(below)}"
        for site, value in t_scores.items()
        if value is not None and value < below
    ]
    if low:
        return _Branch("t_score", True, ", ".join(low))
    unrecorded = [site for site, value in t_scores.items() if value is None]
    if unrecorded:
        return _Branch("t_score", None, f"T-score at {', '.join(unrecorded)} not recorded")
    lowest = min(value for value in t_scores.values() if value is not None)
    return _Branch("t_score", False, f"lowest T-score {_fmt(lowest)} is not below {_fmt(below)}")


def _frax_branch(facts: ScreeningFacts, major_above: Decimal, hip_above: Decimal) -> _Branch:
    major, hip = facts.frax_major_pct, facts.frax_hip_pct
    high = []
    if major is not None and major > major_above:
        high.append(f"FRAX major osteoporotic fracture risk {_fmt(major)}% is above {_fmt(major_above)}%")
    if hip is not None and hip > hip_above:
        high.append(f"FRAX hip fracture risk {_fmt(hip)}% is above {_fmt(hip_above)}%")
    if high:
        return _Branch("frax", True, ", ".join(high))
    if major is None or hip is None:
        return _Branch("frax", None, "FRAX risk not recorded")
    return _Branch(
        "frax",
        False,
        f"FRAX major {_fmt(major)}% is not above {_fmt(major_above)}% and hip {_fmt(hip)}% is not above "
        f"{_fmt(hip_above)}%",
    )


def _glucocorticoid_branch(facts: ScreeningFacts, min_dose: Decimal, over_months: Decimal) -> _Branch:
    dose, months = facts.glucocorticoid_dose_mg_per_day, facts.glucocorticoid_duration_months
    if dose is None:
        return _Branch("glucocorticoid", None, "glucocorticoid use not recorded")
    if dose < min_dose:
        return _Branch("glucocorticoid", False, f"glucocorticoid {_fmt(dose)} mg/day is below {_fmt(min_dose)}")
    if months is None:
        return _Branch("glucocorticoid", None, "duration of glucocorticoid use not recorded")
    described = f"glucocorticoid {_fmt(dose)} mg/day (prednisolone-equivalent) for {_fmt(months)} months"
    if months > over_months:
        return _Branch("glucocorticoid", True, described)
    return _Branch("glucocorticoid", False, f"{described} is not over {_fmt(over_months)} months")


@rule("osteoporosis_high_fracture_risk")
def osteoporosis_high_fracture_risk(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """At least one qualifying feature (I4). See the module docstring for the glucocorticoid case.

    MET as soon as one feature holds (the reason lists every one that holds); MISSING_DATA when none
    holds yet but some could once recorded; NOT_MET when every feature is recorded and none holds.
    """
    fracture_months = _whole_param(params, "fragility_fracture_within_months")
    t_below = _num_param(params, "t_score_below")
    frax_major_above = _num_param(params, "frax_major_above_pct")
    frax_hip_above = _num_param(params, "frax_hip_above_pct")
    gc_min = _num_param(params, "glucocorticoid_min_mg_per_day")
    gc_over = _num_param(params, "glucocorticoid_over_months")
    gc_only_needs_judgment = _bool_param(params, "glucocorticoid_only_needs_judgment", default=True)

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
            reason = _join(reason, *unknown)
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
    gc_min = _num_param(params, "glucocorticoid_min_mg_per_day")
    dose, months = facts.glucocorticoid_dose_mg_per_day, facts.glucocorticoid_duration_months
    note = ""
    if dose is not None and dose >= gc_min:
        duration = f" for {_fmt(months)} months" if months is not None else ""
        note = (
            f"Glucocorticoid {_fmt(dose)} mg/day (prednisolone-equivalent){duration} recorded: "
            "consider drug-induced osteoporosis"
        )
    return Outcome(Verdict.MET, note, needs_judgment=True, question=_question_param(params))


def _recent(
    checks: _Checks, event: dt.date | None, screening: dt.date | None, months: int, label: str, none_text: str
) -> None:
    """Breach when ``event`` lies within ``months`` calendar months before screening (edge day inside)."""
    if event is None:
        checks.passed(none_text)
    elif screening is None:
        checks.miss(f"Screening date not recorded (needed for {label.lower()})")
    elif _within_months_before(event, screening, months):
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
    pth_months = _whole_param(params, "pth_analog_within_months")
    rankl_months = _whole_param(params, "rankl_inhibitor_within_months")
    oral_max = _num_param(params, "oral_bisphosphonate_max_cumulative_months")
    oral_recent_min = _num_param(params, "oral_bisphosphonate_recent_min_cumulative_months")
    oral_recent_months = _whole_param(params, "oral_bisphosphonate_recent_within_months")
    iv_months = _whole_param(params, "iv_bisphosphonate_within_months")

    if not facts.bone_treatment_history_recorded:
        return Outcome(Verdict.MISSING_DATA, "Prior anti-osteoporosis treatment history not recorded")
    screening = facts.screening_date
    checks = _Checks()
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
        checks.breach(f"Cumulative oral bisphosphonate use {_fmt(cumulative)} months is ≥ {_fmt(oral_max)} months")
    elif cumulative > oral_recent_min:
        span = (
            f"Oral bisphosphonate for {_fmt(cumulative)} months "
            f"(more than {_fmt(oral_recent_min)}, less than {_fmt(oral_max)})"
        )
        if last_oral is None:
            checks.miss(f"Date of last oral bisphosphonate dose not recorded ({span.lower()})")
        elif screening is None:
            checks.miss("Screening date not recorded (needed for the last oral bisphosphonate dose)")
        elif _within_months_before(last_oral, screening, oral_recent_months):
            cutoff = months_before(screening, oral_recent_months)
            checks.breach(
                f"{span} with the last dose on {last_oral.isoformat()}, within {oral_recent_months} months "
                f"before screening (on or after {cutoff.isoformat()})"
            )
        else:
            checks.passed(f"{span.lower()}, last dose more than {oral_recent_months} months before screening")
    else:
        checks.passed(f"oral bisphosphonate for {_fmt(cumulative)} months (not more than {_fmt(oral_recent_min)})")
    _recent(
        checks,
        facts.last_iv_bisphosphonate_date,
        screening,
        iv_months,
        "Intravenous bisphosphonate last given",
        "no intravenous bisphosphonate",
    )
    return checks.outcome()


@rule("dxa_measurability")
def dxa_measurability(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: fewer than ``min_measurable_lumbar_vertebrae``, or body size impedes DXA (E9)."""
    minimum = _whole_param(params, "min_measurable_lumbar_vertebrae")
    checks = _Checks()
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


@rule("infection_serology")
def infection_serology(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: HBV-DNA at/above a limit or above ULN; HCV Ab+ with RNA > ULN; syphilis; HIV (E10)."""
    hbv_limit = _num_param(params, "hbv_dna_exclude_at_or_above_cps_per_ml")
    checks = _Checks()
    hbv, uln = facts.hbv_dna_cps_per_ml, facts.hbv_dna_uln
    if hbv is None:
        checks.miss("HBV-DNA not recorded")
    elif hbv >= hbv_limit:
        checks.breach(f"HBV-DNA {_fmt(hbv)} cps/mL is ≥ {_fmt(hbv_limit)}")
    elif uln is None:
        checks.miss("HBV-DNA upper limit of normal not recorded")
    elif hbv > uln:
        checks.breach(f"HBV-DNA {_fmt(hbv)} cps/mL is above the upper limit of normal ({_fmt(uln)})")
    else:
        checks.passed(f"HBV-DNA {_fmt(hbv)} cps/mL")

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
    elevated = _num_param(params, "tsh_elevated_above")
    high = _num_param(params, "tsh_high_above")
    judged = _bool_param(params, "investigator_judgment", default=False)
    question = _question_param(params)
    checks = _Checks()
    tsh, lower, upper = facts.tsh, facts.tsh_lower_limit, facts.tsh_upper_limit
    if tsh is None:
        checks.miss("TSH not recorded")
    elif tsh > high:
        checks.breach(f"TSH {_fmt(tsh)} μIU/mL is above {_fmt(high)}")
    elif tsh > elevated:
        if facts.t4_in_range is None:
            checks.miss(f"Serum T4 not recorded (TSH {_fmt(tsh)} μIU/mL is above {_fmt(elevated)})")
        elif not facts.t4_in_range:
            checks.breach(
                f"TSH {_fmt(tsh)} μIU/mL is above {_fmt(elevated)} (and not above {_fmt(high)}) "
                "with serum T4 outside the normal range"
            )
        else:
            checks.passed(f"TSH {_fmt(tsh)} μIU/mL is above {_fmt(elevated)} but serum T4 is within the normal range")
    elif lower is None:
        checks.miss("Lower limit of the TSH normal range not recorded")
    elif tsh < lower:
        checks.breach(f"TSH {_fmt(tsh)} μIU/mL is below the normal range (lower limit {_fmt(lower)})")
    elif upper is not None and tsh > upper:
        checks.passed(
            f"TSH {_fmt(tsh)} μIU/mL is above the normal range (upper limit {_fmt(upper)}) "
            f"but not above {_fmt(elevated)}"
        )
    else:
        checks.passed(f"TSH {_fmt(tsh)} μIU/mL")
    return checks.outcome(needs_judgment=judged, question=question)


@rule("hepatic_renal")
def hepatic_renal(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: AST/ALT ≥ n×ULN, ALP/bilirubin ≥ m×ULN, eGFR below a limit (E14).

    With ``investigator_judgment`` true, cirrhosis / unstable liver disease / biliary anomalies
    are also asked. With ``gilbert_waives_bilirubin`` true, an investigator's documented diagnosis of
    Gilbert's syndrome (``facts.gilbert_syndrome``) waives the bilirubin limit only.
    """
    transaminase = _num_param(params, "aminotransferase_exclude_at_or_above_x_uln")
    alp_bilirubin = _num_param(params, "alp_bilirubin_exclude_at_or_above_x_uln")
    egfr_below = _num_param(params, "egfr_exclude_below")
    judged = _bool_param(params, "investigator_judgment", default=False)
    gilbert_waives = _bool_param(params, "gilbert_waives_bilirubin", default=False)
    question = _question_param(params)
    gilbert = facts.gilbert_syndrome if gilbert_waives else None
    checks = _Checks()
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
            checks.passed(f"{name} {_fmt(value)}×ULN is ≥ {_fmt(limit)}×ULN, waived: Gilbert's syndrome documented "
                          f"by {waiver.by} on {waiver.on.isoformat()}")  # fmt: skip
        elif value >= limit:
            checks.breach(f"{name} {_fmt(value)}×ULN is ≥ {_fmt(limit)}×ULN")
        else:
            checks.passed(f"{name} {_fmt(value)}×ULN")
    if facts.egfr is None:
        checks.miss("eGFR not recorded")
    elif facts.egfr < egfr_below:
        checks.breach(f"eGFR {_fmt(facts.egfr)} mL/min/1.73 m² is below {_fmt(egfr_below)}")
    else:
        checks.passed(f"eGFR {_fmt(facts.egfr)} mL/min/1.73 m²")
    return checks.outcome(needs_judgment=judged, question=question)


@rule("recent_other_trial")
def recent_other_trial(facts: ScreeningFacts, params: Mapping[str, Any]) -> Outcome:
    """Exclusion: took part in another clinical trial within ``within_months`` before screening (E16)."""
    months = _whole_param(params, "within_months")
    if not facts.other_trial_history_recorded:
        return Outcome(Verdict.MISSING_DATA, "Participation in other clinical trials not recorded")
    checks = _Checks()
    _recent(
        checks,
        facts.last_other_trial_date,
        facts.screening_date,
        months,
        "Last participation in another clinical trial",
        "no participation in another clinical trial",
    )
    return checks.outcome()
