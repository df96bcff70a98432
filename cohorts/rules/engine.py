"""The engine: verdicts, the participant's facts, the protocol's criteria, the rule registry, ``evaluate``."""

from __future__ import annotations

import datetime as dt
import enum
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cohorts.rules.support import (
    capitalise,
    join_parts,
    to_decimal,
)


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
BOOLEAN_FACTS = frozenset(
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
            object.__setattr__(self, name, to_decimal(getattr(self, name), name))
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
        return CriterionResult(spec.code, spec.kind, verdict, capitalise(reason), judged)

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
        return done(Verdict.NOT_MET, join_parts(outcome.reason, f"investigator judged {said}: {question}"), True)
    if verdict is Verdict.MISSING_DATA:
        note = "investigator's judgment also pending" if judgment is None else "investigator's judgment recorded"
        return done(verdict, join_parts(outcome.reason, note))
    if judgment is None:
        awaiting = f"awaiting investigator's judgment on: {question}"
        return done(Verdict.NEEDS_JUDGMENT, join_parts(outcome.reason, awaiting))
    said = "the exclusion does not apply" if exclusion else "the criterion is satisfied"
    return done(Verdict.MET, join_parts(outcome.reason, f"investigator confirmed {said}: {question}"), True)
