"""Eligibility engine: pure functions over plain values (no Django import).

The package: ``engine`` (verdicts, facts, criteria, the rule registry, ``evaluate``), ``support``
(dates, numbers, words), ``params`` (reading a rule's params), and one module per family of
criteria, each registering its rules on import: ``demographics``, ``osteoporosis``,
``treatment_history``, ``laboratory``.

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

# The rule families register their rules when imported: all of them, before anyone evaluates.
from cohorts.rules import demographics, laboratory, osteoporosis, treatment_history  # noqa: F401
from cohorts.rules.engine import (
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
    criteria_from_data,
    evaluate,
    get_rule,
    known_rules,
    rule,
    validate_criteria,
)
from cohorts.rules.follow_up import (
    FollowUpProgress,
    VisitFact,
    follow_up_progress,
    lost_to_follow_up_due,
    window_over,
)
from cohorts.rules.support import age_in_years, bmi, months_before

__all__ = [
    "CriterionKind",
    "CriterionResult",
    "CriterionSpec",
    "DocumentedDiagnosis",
    "EligibilityConfigError",
    "EligibilityResult",
    "FollowUpProgress",
    "Fracture",
    "Outcome",
    "ScreeningFacts",
    "UnknownRuleError",
    "Verdict",
    "VisitFact",
    "age_in_years",
    "bmi",
    "criteria_from_data",
    "evaluate",
    "follow_up_progress",
    "get_rule",
    "known_rules",
    "lost_to_follow_up_due",
    "months_before",
    "rule",
    "validate_criteria",
    "window_over",
]
