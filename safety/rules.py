"""Dose-escalation designs for Phase 1 trials as pure functions.

This module has no Django dependency (stdlib only) so that a statistician can
check its answers against the R reference implementations side by side:

* the outcome notation and the 3+3 design follow the R package ``escalation``
  by Kristian Brock (``parse_phase1_outcomes``, ``three_plus_three`` and
  ``get_three_plus_three``);
* BOIN follows the R package ``BOIN`` by Yuan et al. (``get.boundary``,
  ``select.mtd``, ``get.oc``) and ``escalation::get_boin``.

Every place where we copy a reference choice has a comment that quotes the R
code it mirrors, so a reviewer can find it in the reference source.

Outcome notation
----------------
A trial history is written as cohorts separated by whitespace. Each cohort is
a dose level (a positive whole number, possibly with several digits) followed
by one letter per patient: ``N`` for no dose-limiting toxicity (DLT) and ``T``
for a DLT. ``"1NNN 2NTN"`` means three patients at dose 1 with no DLT, then
three patients at dose 2 of whom one had a DLT.

Quick use::

    >>> advice = three_plus_three("1NNN", num_doses=3)
    >>> advice.recommended_dose, advice.continue_
    (2, True)
    >>> advice.reason
    '0 of 3 patients at dose 1 had a DLT: escalate to dose 2.'
    >>> boin_boundaries(0.3)
    (0.23649068523646805, 0.35851946464092954)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DESIGNS",
    "BoinBoundary",
    "CohortOutcome",
    "DoseTally",
    "InconsistentThreePlusThreeError",
    "MtdSelection",
    "OutcomeNotationError",
    "Outcomes",
    "Recommendation",
    "beta_cdf",
    "boin",
    "boin_boundaries",
    "boin_decision_table",
    "boin_eliminated_doses",
    "boin_mtd_selection",
    "boin_select_mtd",
    "check_three_plus_three_path",
    "compare",
    "format_outcomes",
    "parse_outcomes",
    "prob_tox_exceeds",
    "recommend",
    "select_mtd",
    "tally",
    "three_plus_three",
    "three_plus_three_select_mtd",
]

_DIGITS = "0123456789"
_OUTCOME_LETTERS = "NT"


# ---------------------------------------------------------------------------
# Outcome notation
# ---------------------------------------------------------------------------


class OutcomeNotationError(ValueError):
    """Raised when an outcome string (e.g. ``"1NNN 2NTN"``) is malformed.

    ``position`` is 1-based (the first character is position 1) and
    ``character`` is the offending character, when there is one.
    """

    def __init__(
        self, message: str, *, text: str | None = None, position: int | None = None, character: str | None = None
    ) -> None:
        super().__init__(message)
        self.text = text
        self.position = position
        self.character = character


@dataclass(frozen=True, slots=True)
class CohortOutcome:
    """One cohort: the dose level given and one letter per patient (``N``/``T``)."""

    dose: int
    outcomes: str

    def __post_init__(self) -> None:
        if isinstance(self.dose, bool) or not isinstance(self.dose, int):
            raise OutcomeNotationError(f"dose level must be a whole number, got {self.dose!r}")
        if self.dose < 1:
            # escalation R/phase1_outcomes_to_cohorts.R:
            #   if(c_dl <= 0) stop('Dose-levels must be strictly positive integers.')
            raise OutcomeNotationError(f"dose level {self.dose} is not allowed: dose levels are numbered from 1")
        if not isinstance(self.outcomes, str) or not self.outcomes:
            raise OutcomeNotationError(
                f"cohort at dose {self.dose} has no patient outcomes: give one N (no DLT) or T (DLT) per patient"
            )
        bad = [c for c in self.outcomes if c not in _OUTCOME_LETTERS]
        if bad:
            raise OutcomeNotationError(
                f"unexpected character {bad[0]!r} in outcomes {self.outcomes!r} at dose {self.dose}: "
                "use N (no DLT) or T (DLT)",
                character=bad[0],
            )

    @property
    def n(self) -> int:
        """Number of patients in the cohort."""
        return len(self.outcomes)

    @property
    def tox(self) -> int:
        """Number of patients in the cohort with a DLT."""
        return self.outcomes.count("T")

    def __str__(self) -> str:
        return f"{self.dose}{self.outcomes}"


@dataclass(frozen=True, slots=True)
class DoseTally:
    """Patients treated (``n``) and DLTs seen (``tox``) at one dose level."""

    n: int
    tox: int

    @property
    def rate(self) -> float | None:
        """Observed DLT rate, or ``None`` when nobody has been treated."""
        return self.tox / self.n if self.n else None


#: What the design functions accept: an outcome string or already parsed cohorts.
Outcomes = str | Sequence[CohortOutcome]


def _unexpected(text: str, index: int, expected: str) -> OutcomeNotationError:
    """Build the error for an unexpected character at 0-based ``index``."""
    ch = text[index]
    position = index + 1
    if ch in "nt":
        # escalation only matches upper case: valid_str_match <- '^\\s*(\\d+[NT]+\\s*)+$'
        # so '1nnn' is rejected by R as well. We reject it with a more helpful message.
        hint = (
            "outcome letters must be upper case N (no DLT) or T (DLT); "
            "lower case is not accepted, as in the R package escalation"
        )
    else:
        hint = f"expected {expected}"
    return OutcomeNotationError(
        f'unexpected character {ch!r} at position {position} in "{text}": {hint}',
        text=text,
        position=position,
        character=ch,
    )


def parse_outcomes(text: str, *, num_doses: int | None = None) -> list[CohortOutcome]:
    """Parse the common outcome notation into cohorts.

    >>> parse_outcomes("1NNN 2NTN")
    [CohortOutcome(dose=1, outcomes='NNN'), CohortOutcome(dose=2, outcomes='NTN')]

    Rules (mirroring ``escalation::phase1_outcomes_to_cohorts``, whose gate-keeper
    regex is ``'^\\s*(\\d+[NT]+\\s*)+$'``):

    * a cohort is a dose level (digits, may be multi-digit, leading zeros allowed
      as R's ``as.integer('01')`` is 1) followed by one or more ``N``/``T``;
    * dose level 0 is rejected (R: ``if(c_dl <= 0) stop(...)``);
    * letters are case-sensitive: ``n``/``t`` are rejected, as in R;
    * cohorts are normally separated by whitespace; like R, cohorts written
      back to back (``"1N2T"``) are also accepted because the regex allows
      ``\\s*`` (zero spaces) between cohorts;
    * deviation from R: a blank string (only whitespace) means "no patients"
      and returns ``[]``; R accepts only ``''`` and errors on ``' '``.

    When ``num_doses`` is given, a dose level above it is an error too (R:
    ``'maximum dose given exceeds number of doses.'`` in the selectors).

    Errors are :class:`OutcomeNotationError` whose message names the bad
    character and its 1-based position, e.g.
    ``unexpected character 'X' at position 3 in "1NXN": ...``.
    """
    if not isinstance(text, str):
        raise TypeError(f"outcomes must be a string, got {type(text).__name__}")
    if num_doses is not None:
        _check_num_doses(num_doses)
    cohorts: list[CohortOutcome] = []
    i, length = 0, len(text)
    while i < length:
        if text[i].isspace():
            i += 1
            continue
        if text[i] not in _DIGITS:
            raise _unexpected(text, i, "a dose level (a whole number such as 1 or 12) before the outcome letters")
        start = i
        while i < length and text[i] in _DIGITS:
            i += 1
        dose_text = text[start:i]
        dose = int(dose_text)
        if dose == 0:
            raise OutcomeNotationError(
                f'dose level {dose_text} at position {start + 1} in "{text}" is not allowed: '
                "dose levels are numbered from 1",
                text=text,
                position=start + 1,
                character=text[start],
            )
        if num_doses is not None and dose > num_doses:
            raise OutcomeNotationError(
                f'dose level {dose} at position {start + 1} in "{text}" is above the highest dose level ({num_doses})',
                text=text,
                position=start + 1,
                character=text[start],
            )
        letters_start = i
        while i < length and text[i] in _OUTCOME_LETTERS:
            i += 1
        if i == letters_start:
            if i == length or text[i].isspace():
                raise OutcomeNotationError(
                    f'cohort "{dose_text}" at position {start + 1} in "{text}" has no patient outcomes: '
                    f'give one N (no DLT) or T (DLT) per patient after the dose level, e.g. "{dose}NNN"',
                    text=text,
                    position=start + 1,
                    character=None,
                )
            raise _unexpected(text, i, "N (no DLT) or T (DLT)")
        if i < length and not (text[i].isspace() or text[i] in _DIGITS):
            raise _unexpected(text, i, "N (no DLT), T (DLT) or a space before the next cohort")
        cohorts.append(CohortOutcome(dose=dose, outcomes=text[letters_start:i]))
    return cohorts


def format_outcomes(cohorts: Sequence[CohortOutcome]) -> str:
    """Inverse of :func:`parse_outcomes`: ``[CohortOutcome(1, 'NNN')]`` -> ``"1NNN"``."""
    return " ".join(str(c) for c in cohorts)


def tally(cohorts: Sequence[CohortOutcome], num_doses: int | None = None) -> dict[int, DoseTally]:
    """Aggregate patients and DLTs per dose level, ordered by dose.

    Without ``num_doses`` only the doses that were given appear; with it, every
    dose ``1..num_doses`` appears (untreated ones as ``DoseTally(0, 0)``), like
    escalation's ``model_frame_to_counts(df, num_doses)``.
    """
    n: dict[int, int] = {}
    tox: dict[int, int] = {}
    for cohort in cohorts:
        n[cohort.dose] = n.get(cohort.dose, 0) + cohort.n
        tox[cohort.dose] = tox.get(cohort.dose, 0) + cohort.tox
    doses = sorted(n) if num_doses is None else sorted(set(range(1, num_doses + 1)) | set(n))
    return {d: DoseTally(n=n.get(d, 0), tox=tox.get(d, 0)) for d in doses}


def _check_num_doses(num_doses: int) -> None:
    if isinstance(num_doses, bool) or not isinstance(num_doses, int) or num_doses < 1:
        raise ValueError(f"num_doses must be a whole number of at least 1, got {num_doses!r}")


def _coerce(outcomes: Outcomes, num_doses: int) -> list[CohortOutcome]:
    """Accept an outcome string or parsed cohorts; check doses against ``num_doses``."""
    _check_num_doses(num_doses)
    if isinstance(outcomes, str):
        return parse_outcomes(outcomes, num_doses=num_doses)
    cohorts = list(outcomes)
    for index, cohort in enumerate(cohorts, start=1):
        if not isinstance(cohort, CohortOutcome):
            raise TypeError(f"cohort {index} must be a CohortOutcome, got {type(cohort).__name__}")
        if cohort.dose > num_doses:
            raise OutcomeNotationError(
                f'dose level {cohort.dose} in cohort {index} ("{cohort}") is above the highest dose level ({num_doses})'
            )
    return cohorts


# ---------------------------------------------------------------------------
# Recommendation
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The design's advice for the next cohort.

    ``recommended_dose`` is ``None`` when no dose is acceptable (R returns
    ``NA``); ``continue_`` says whether the trial should keep enrolling;
    ``reason`` is a plain sentence for the safety committee; ``mtd`` is set
    when the design has finished and declared a maximum tolerated dose.
    """

    recommended_dose: int | None
    continue_: bool
    reason: str
    mtd: int | None = None
    design: str = ""

    def to_dict(self) -> dict[str, int | bool | str | None]:
        """Exactly ``{"recommended_dose": ..., "continue": ..., "reason": ...}``."""
        return {"recommended_dose": self.recommended_dose, "continue": self.continue_, "reason": self.reason}


def _patients(n: int) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def _dlts(n: int) -> str:
    return f"{n} DLT" if n == 1 else f"{n} DLTs"


# ---------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------


class InconsistentThreePlusThreeError(ValueError):
    """The outcomes cannot have arisen by following the 3+3 rules (strict mode)."""


def check_three_plus_three_path(cohorts: Outcomes, *, allow_deescalate: bool = False) -> None:
    """Raise :class:`InconsistentThreePlusThreeError` if the path broke the 3+3 rules.

    Mirrors ``escalation::enforce_three_plus_three`` (called by ``three_plus_three``
    because its ``strict_mode = TRUE`` by default, and ``get_three_plus_three``
    never turns it off). The checks, in R's order:

    1. ``any(df_c$n > 6)``: no dose may have more than 6 patients;
    2. ``df_c$n > 3 & df_c$tox == 0``: a dose with no DLT should not have more
       than 3 patients. Not applied when ``allow_deescalate`` is true, because
       Korn's variant legitimately brings a DLT-free dose up to 6 after a
       de-escalation (e.g. ``1NNN 2NTT 1NNN``). The R source of the
       de-escalation-aware enforcer was not available to us; see module notes;
    3. the doses given must be contiguous (``some doses have been skipped``);
    4. at most one dose may have an incomplete cohort (``n %% 3 != 0``);
    5. every dose other than the last one given must have complete cohorts.

    Like R, this does not catch every deviation (R's own TODO: ``'1NTT 1N'``
    and ``'1NNN 1T'`` are not detected).
    """
    parsed = list(parse_outcomes(cohorts)) if isinstance(cohorts, str) else list(cohorts)
    if not parsed:
        return
    counts = tally(parsed)
    last_dose = parsed[-1].dose
    for dose, t in counts.items():
        if t.n > 6:
            raise InconsistentThreePlusThreeError(
                f"Inconsistent 3+3: dose {dose} has been given to {t.n} patients; 3+3 never treats more than 6."
            )
    if not allow_deescalate:
        for dose, t in counts.items():
            if t.n > 3 and t.tox == 0:
                raise InconsistentThreePlusThreeError(
                    f"Inconsistent 3+3: dose {dose} had no DLT but was given to {t.n} patients; "
                    "after 0 of 3 the trial should have escalated."
                )
    given = sorted(counts)
    if given[-1] - given[0] + 1 != len(given):
        missing = sorted(set(range(given[0], given[-1] + 1)) - set(given))
        raise InconsistentThreePlusThreeError(f"Inconsistent 3+3: dose(s) {', '.join(map(str, missing))} were skipped.")
    in_progress = [dose for dose, t in counts.items() if t.n % 3 != 0]
    if len(in_progress) > 1:
        raise InconsistentThreePlusThreeError(
            f"Inconsistent 3+3: several cohorts are in progress (doses {', '.join(map(str, in_progress))})."
        )
    for dose in in_progress:
        if dose != last_dose:
            raise InconsistentThreePlusThreeError(
                f"Inconsistent 3+3: the cohort at dose {dose} is incomplete ({_patients(counts[dose].n)}) "
                f"but the last cohort was treated at dose {last_dose}."
            )


def three_plus_three(
    cohorts: Outcomes,
    *,
    num_doses: int,
    allow_deescalate: bool = False,
    strict: bool = True,
    confirm_on_six: bool = False,
) -> Recommendation:
    """Next-dose advice from the 3+3 design, matching ``escalation::get_three_plus_three``.

    Standard rules: escalate after 0/3; expand to 6 after 1/3; escalate after
    at most 1/6; stop escalating after 2 or more DLTs in 3 or in 6.

    Reference choices mirrored from ``escalation`` ``R/three_plus_three.R``
    (the version that implements ``allow_deescalate``), decided at the dose the
    *last* cohort received (``last_dose <- df$dose %>% tail(1)``):

    * No patients -> dose 1, continue (``if(length(last_dose) == 0) last_dose <- 1``
      then ``n_d < 3``).
    * Fewer than 3, or 4-5 patients at the current dose -> stay, continue
      (``if(n_d < 3)`` / ``else if(n_d < 6)``).
    * 0/3, or at most 1/6, at the **top dose** -> stop and recommend the top
      dose (``if(last_dose == num_doses) { next_dose = last_dose; cont = FALSE }``).
      Note: 0/3 at the top dose is *not* expanded to 6 first, and 1/6 at the
      top dose stops with the top dose as MTD.
    * 0/3, or at most 1/6, but the next dose already has 6 patients or at least
      2 DLTs -> stop and recommend the current dose
      (``df_c$n[last_dose + 1] >= 6 | df_c$tox[last_dose + 1] >= 2``).
    * 1/3 -> stay at the same dose, continue (even at the top dose).
    * 2+ DLTs in 3 or 6, ``allow_deescalate=False``: at dose 1 -> stop, no dose
      (``next_dose <- NA``); otherwise stop and recommend the dose below
      (``next_dose <- last_dose - 1; cont <- FALSE``) **even if that dose has
      only 3 patients** (R does not expand it to 6).
    * 2+ DLTs, ``allow_deescalate=True`` (Korn et al. 1994): at dose 1 -> stop,
      no dose; if the dose below has fewer than 6 patients -> de-escalate to it
      and continue (``if(df_c$n[last_dose - 1] < 6)``); otherwise stop and
      recommend the highest dose with at least 6 patients and at most 1 DLT
      (``filter(n >= 6 & tox <= 1)`` then ``tail(korn_criteria, 1)``), or no
      dose if there is none.
    * More than 6 patients at the current dose: R warns and then fails
      (``next_dose`` is never assigned); we raise
      :class:`InconsistentThreePlusThreeError`.

    ``strict=True`` (R's ``strict_mode = TRUE`` default) first checks the
    history with :func:`check_three_plus_three_path`.

    ``mtd`` is set to the recommended dose whenever the design stops with a
    dose (that is what ``recommended_dose`` means in R once ``continue`` is
    ``FALSE``). It is R's answer, not an MTD selection: the dose may have only
    3 patients, or be the top dose that nothing exceeded. A safety review
    records the MTD from :func:`three_plus_three_select_mtd` instead.

    ``confirm_on_six=True`` is the variant that never ends escalation on 3
    patients (the classic 3+3 as reviewed by Le Tourneau, Lee & Siu, JNCI
    2009;101:708-720: "the recommended dose ... is conventionally defined as the
    dose level just below this toxic dose level", with that dose confirmed on 6
    patients). It implies ``allow_deescalate`` (Korn's de-escalation to treat 6
    at the dose below) and, beyond R, expands a DLT-free cohort of 3 to 6 where
    R would stop on it: at the top dose, and below a dose already ruled out.
    It is not an option of ``escalation::get_three_plus_three``; with it off
    the answers are R's exactly.
    """
    allow_deescalate = allow_deescalate or confirm_on_six
    parsed = _coerce(cohorts, num_doses)
    if strict:
        check_three_plus_three_path(parsed, allow_deescalate=allow_deescalate)
    counts = tally(parsed, num_doses=num_doses)
    design = "3+3"

    def go(dose: int | None, cont: bool, reason: str) -> Recommendation:
        mtd = dose if (not cont and dose is not None) else None
        return Recommendation(recommended_dose=dose, continue_=cont, reason=reason, mtd=mtd, design=design)

    if not parsed:
        # R: if(length(last_dose) == 0) last_dose <- 1  -> n_d = 0 < 3 -> stay at dose 1
        return go(1, True, "No patients have been treated yet: start at dose 1.")

    dose = parsed[-1].dose
    n, tox = counts[dose].n, counts[dose].tox
    seen = f"{tox} of {n} patients at dose {dose} had a DLT"

    if n < 3:
        # R: if(n_d < 3) { next_dose <- last_dose; cont <- TRUE }
        return go(dose, True, f"{seen} so far; the cohort of 3 is not complete: continue at dose {dose}.")
    if 3 < n < 6:
        # R: else if(n_d < 6) { next_dose <- last_dose; cont <- TRUE }
        return go(dose, True, f"{seen} so far; the expansion to 6 is not complete: continue at dose {dose}.")
    if n > 6:
        # R: warning('Inconsistent 3+3: more than six patients at a dose-level.'), then no next_dose.
        raise InconsistentThreePlusThreeError(
            f"Inconsistent 3+3: dose {dose} has been given to {n} patients; 3+3 never treats more than 6."
        )
    if n == 3 and tox == 1:
        # R: else if(tox_d == 1) { next_dose = last_dose; cont = TRUE }
        return go(dose, True, f"{seen}: expand dose {dose} to 6 patients.")

    if (n == 3 and tox == 0) or (n == 6 and tox <= 1):
        # R: "Escalate if you can, or stop if at top dose"
        above = counts.get(dose + 1)
        ruled_out_above = above is not None and (above.n >= 6 or above.tox >= 2)
        if confirm_on_six and n == 3 and (dose == num_doses or ruled_out_above):
            # Beyond R: escalation would end here, so the dose is confirmed on 6 patients first.
            where = "the highest dose" if dose == num_doses else f"the highest dose below dose {dose + 1}"
            return go(dose, True, f"{seen}; dose {dose} is {where}, so it is confirmed on 6 patients before "
                      f"escalation ends: expand dose {dose} to 6 patients.")  # fmt: skip
        if dose == num_doses:
            # R: if(last_dose == num_doses) { next_dose = last_dose; cont = FALSE }
            return go(dose, False, f"{seen} and dose {dose} is the highest dose: stop and recommend dose {dose}.")
        if ruled_out_above:
            # R: (df_c$n[last_dose + 1] >= 6 | df_c$tox[last_dose + 1] >= 2) -> stop at current dose
            why = f"{_dlts(above.tox)} in {_patients(above.n)}" if above.tox >= 2 else f"{_patients(above.n)} treated"
            return go(
                dose,
                False,
                f"{seen}, and dose {dose + 1} has already been ruled out ({why}): stop and recommend dose {dose}.",
            )
        return go(dose + 1, True, f"{seen}: escalate to dose {dose + 1}.")

    # Two or more DLTs in 3 or in 6 patients.
    if dose == 1:
        # R: if(last_dose == 1) { next_dose <- NA; cont <- FALSE }  (with or without de-escalation)
        return go(
            None,
            False,
            f"{seen}, which is too toxic, and there is no lower dose: stop the trial; no dose is recommended.",
        )
    below = counts[dose - 1]
    if not allow_deescalate:
        # R: next_dose <- last_dose - 1; cont <- FALSE  (no check of how many were treated below)
        return go(
            dose - 1,
            False,
            f"{seen}, which is too toxic: stop escalation and recommend dose {dose - 1} "
            f"({below.tox} of {below.n} patients had a DLT there).",
        )
    if below.n < 6:
        # R (Korn): if(df_c$n[last_dose - 1] < 6) { next_dose <- last_dose - 1; cont <- TRUE }
        return go(
            dose - 1,
            True,
            f"{seen}, which is too toxic: de-escalate to dose {dose - 1}, "
            f"which has only {_patients(below.n)}, so that 6 are treated there.",
        )
    # R (Korn): "the highest dose level (>= 1) in which 6 patients have been treated with <= 1 DLT"
    korn = [d for d, t in counts.items() if t.n >= 6 and t.tox <= 1]
    if korn:
        mtd = korn[-1]
        return go(
            mtd,
            False,
            f"{seen}, which is too toxic, and dose {dose - 1} already has {_patients(below.n)}: "
            f"stop; dose {mtd} is the highest dose with at most 1 DLT in 6 or more patients.",
        )
    return go(
        None,
        False,
        f"{seen}, which is too toxic, and dose {dose - 1} already has {_patients(below.n)}; "
        "no dose has at most 1 DLT in 6 or more patients: stop the trial; no dose is recommended.",
    )


# ---------------------------------------------------------------------------
# MTD selection: what a review may record as the MTD (always a treated dose)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MtdSelection:
    """The design's own MTD selection over the data, never the recommended *next* dose.

    ``status`` is one of:

    * ``"mtd"``: ``dose`` is the MTD (a treated dose);
    * ``"not_reached"``: no dose was too toxic; ``highest_cleared`` is the highest
      dose that passed the escalation rule (0/3 or at most 1/6), ``dose`` is None;
    * ``"not_determined"``: a dose was too toxic but no dose below it has been
      confirmed on 6 patients with at most 1 DLT (3+3 declares no MTD on 3);
    * ``"none"``: dose 1 is too toxic (or nobody was treated): there is no MTD.
    """

    status: str
    dose: int | None
    reason: str
    highest_cleared: int | None = None

    def to_dict(self) -> dict[str, int | str | None]:
        return {"status": self.status, "dose": self.dose, "highest_cleared": self.highest_cleared,
                "reason": self.reason}  # fmt: skip

    @property
    def statement(self) -> str:
        """One line for the review and the trial's record, e.g. "MTD: dose 2"."""
        if self.status == "mtd":
            return f"MTD: dose {self.dose}"
        if self.status == "not_reached":
            return f"MTD not reached; highest dose cleared: {self.highest_cleared}"
        if self.status == "not_determined":
            return "MTD not determined"
        return "No MTD"


def three_plus_three_select_mtd(cohorts: Outcomes, *, num_doses: int) -> MtdSelection:
    """The 3+3 MTD: the highest dose with at least 6 treated and at most 1 DLT, below every dose that
    was too toxic (2 or more DLTs). Le Tourneau, Lee & Siu (JNCI 2009) define the recommended dose as
    "the dose level just below this toxic dose level"; R ``escalation`` (Korn branch of
    ``three_plus_three.R``) selects ``filter(n >= 6 & tox <= 1)`` then the highest. None when dose 1
    is too toxic. When no dose was too toxic the MTD was not reached, and the highest dose cleared
    (0/3 or at most 1/6) is reported instead: it is not an MTD.
    """
    counts = tally(_coerce(cohorts, num_doses), num_doses=num_doses)
    treated = [d for d, t in counts.items() if t.n > 0]
    if not treated:
        return MtdSelection("none", None, "Nobody has been treated: there is no MTD.")
    toxic = [d for d, t in counts.items() if t.n > 0 and t.tox >= 2]
    lowest_toxic = min(toxic) if toxic else None
    if lowest_toxic == 1:
        t = counts[1]
        return MtdSelection("none", None, f"Dose 1 is too toxic ({t.tox} of {t.n} patients had a DLT): no MTD.")
    confirmed = [d for d, t in counts.items() if t.n >= 6 and t.tox <= 1 and (lowest_toxic is None or d < lowest_toxic)]
    if lowest_toxic is None:
        cleared = [d for d, t in counts.items() if (t.n >= 3 and t.tox == 0) or (t.n >= 6 and t.tox <= 1)]
        if not cleared:
            return MtdSelection("not_determined", None, "No dose has completed a cohort of 3: no MTD yet.")
        top = max(cleared)
        t = counts[top]
        return MtdSelection(
            "not_reached", None,
            f"No dose was too toxic: the MTD was not reached. The highest dose cleared is dose {top} "
            f"({t.tox} of {t.n} patients had a DLT).", highest_cleared=top,
        )  # fmt: skip
    toxic_tally = counts[lowest_toxic]
    too_toxic = f"dose {lowest_toxic} is too toxic ({toxic_tally.tox} of {toxic_tally.n} patients had a DLT)"
    if not confirmed:
        below = counts[lowest_toxic - 1]
        return MtdSelection(
            "not_determined", None,
            f"{too_toxic.capitalize()}, and no lower dose has at least 6 patients with at most 1 DLT "
            f"(dose {lowest_toxic - 1}: {below.tox} of {below.n}): the 3+3 declares no MTD on fewer than 6 patients.",
        )  # fmt: skip
    mtd = max(confirmed)
    t = counts[mtd]
    return MtdSelection(
        "mtd", mtd, f"{too_toxic.capitalize()}; dose {mtd} is the highest dose below it with at least 6 patients "
        f"and at most 1 DLT ({t.tox} of {t.n}).",
    )  # fmt: skip


# ---------------------------------------------------------------------------
# BOIN
# ---------------------------------------------------------------------------


def _boin_parameters(target: float, p_saf: float | None, p_tox: float | None) -> tuple[float, float]:
    """Apply BOIN's defaults and its own input checks (get.boundary / get.oc)."""
    # BOIN get.boundary: p.saf=0.6*target, p.tox=1.4*target
    p_saf = 0.6 * target if p_saf is None else p_saf
    p_tox = 1.4 * target if p_tox is None else p_tox
    # BOIN get.boundary: if(target<0.05) "the target is too low!"; if(target>0.6) "too high!"
    if target < 0.05:
        raise ValueError(f"BOIN target {target} is too low: it must be at least 0.05 (as in R BOIN)")
    if target > 0.6:
        raise ValueError(f"BOIN target {target} is too high: it must be at most 0.6 (as in R BOIN)")
    if not 0 < p_saf < target:
        raise ValueError(f"p_saf must lie strictly between 0 and the target {target}, got {p_saf}")
    if not target < p_tox < 1:
        raise ValueError(f"p_tox must lie strictly between the target {target} and 1, got {p_tox}")
    # BOIN get.boundary: if((target-p.saf)<(0.1*target)) and if((p.tox-target)<(0.1*target))
    if (target - p_saf) < (0.1 * target):
        raise ValueError("the probability deemed safe (p_saf) cannot be higher than or too close to the target")
    if (p_tox - target) < (0.1 * target):
        raise ValueError("the probability deemed toxic (p_tox) cannot be lower than or too close to the target")
    return p_saf, p_tox


def boin_boundaries(target: float, p_saf: float | None = None, p_tox: float | None = None) -> tuple[float, float]:
    """BOIN escalation and de-escalation boundaries ``(lambda_e, lambda_d)``.

    Liu & Yuan (2015), as computed in ``BOIN::get.boundary``::

        lambda_e = log((1-p1)/(1-phi)) / log(phi(1-p1) / (p1(1-phi)))
        lambda_d = log((1-phi)/(1-p2)) / log(p2(1-phi) / (phi(1-p2)))

    with ``p1 = p_saf`` (default ``0.6 * target``) and ``p2 = p_tox``
    (default ``1.4 * target``). Target 0.30 gives (0.2365, 0.3585).
    """
    p_saf, p_tox = _boin_parameters(target, p_saf, p_tox)
    # Same operation order as BOIN get.boundary so floating point matches R bit for bit:
    # lambda1 = log((1-p.saf)/(1-target))/log(target*(1-p.saf)/(p.saf*(1-target)));
    # lambda2 = log((1-target)/(1-p.tox))/log(p.tox*(1-target)/(target*(1-p.tox)));
    lambda_e = math.log((1 - p_saf) / (1 - target)) / math.log(target * (1 - p_saf) / (p_saf * (1 - target)))
    lambda_d = math.log((1 - target) / (1 - p_tox)) / math.log(p_tox * (1 - target) / (target * (1 - p_tox)))
    return lambda_e, lambda_d


def beta_cdf(x: float, a: int, b: int) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` (the Beta(a, b) CDF) for positive integers a, b.

    Uses the exact identity ``I_x(a, b) = P(Binomial(a + b - 1, x) >= a)``.
    """
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be between 0 and 1, got {x}")
    m = a + b - 1
    return math.fsum(math.comb(m, k) * x**k * (1 - x) ** (m - k) for k in range(a, m + 1))


def prob_tox_exceeds(target: float, n: int, tox: int) -> float:
    """Posterior ``Pr(p > target | tox DLTs in n patients)`` under a Beta(1, 1) prior.

    BOIN: ``1-pbeta(target, ntox+1, n-ntox+1)``.
    """
    if not 0 <= tox <= n:
        raise ValueError(f"need 0 <= tox <= n, got tox={tox}, n={n}")
    return 1.0 - beta_cdf(target, tox + 1, n - tox + 1)


@dataclass(frozen=True, slots=True)
class BoinBoundary:
    """One column of ``BOIN::get.boundary``'s table, for ``n`` patients at a dose.

    Escalate if DLTs <= ``escalate_at_most``; de-escalate if DLTs >=
    ``deescalate_at_least``; eliminate the dose (and higher doses) if DLTs >=
    ``eliminate_at_least`` (``None``: elimination is impossible at this n, R's ``NA``).
    """

    n: int
    escalate_at_most: int
    deescalate_at_least: int
    eliminate_at_least: int | None


def _boin_row(n: int, target: float, lambda_e: float, lambda_d: float, cutoff_eli: float) -> BoinBoundary:
    # BOIN get.boundary: cutoff1 = floor(lambda1*n); cutoff2 = ceiling(lambda2*n);
    escalate = math.floor(lambda_e * n)
    deescalate = math.ceil(lambda_d * n)
    eliminate: int | None = None
    # BOIN get.boundary: if(n<3) elim = NA  ("require treating at least 3 patients before eliminating")
    if n >= 3:
        # for(ntox in 1:n) if(1-pbeta(target, ntox+1, n-ntox+1)>cutoff.eli) {elimineed=1; break;}
        for ntox in range(1, n + 1):
            if prob_tox_exceeds(target, n, ntox) > cutoff_eli:
                eliminate = ntox
                break
    # BOIN get.boundary: if(!is.na(elim[i]) && (b.d[i]>elim[i])) b.d[i]=elim[i];
    if eliminate is not None and deescalate > eliminate:
        deescalate = eliminate
    return BoinBoundary(n=n, escalate_at_most=escalate, deescalate_at_least=deescalate, eliminate_at_least=eliminate)


def _check_cutoff(cutoff_eli: float) -> None:
    if not 0.0 < cutoff_eli < 1.0:
        raise ValueError(f"cutoff_eli must lie strictly between 0 and 1, got {cutoff_eli}")


def boin_decision_table(
    target: float, max_n: int, cutoff_eli: float = 0.95, *, p_saf: float | None = None, p_tox: float | None = None
) -> list[BoinBoundary]:
    """BOIN decision table for ``n = 1..max_n`` patients at a dose.

    Matches ``BOIN::get.boundary(...)$full_boundary_tab`` exactly:
    ``floor(lambda_e * n)``, ``ceiling(lambda_d * n)``, an elimination
    boundary only for ``n >= 3`` (smallest DLT count with
    ``Pr(p > target | data) > cutoff_eli`` under a Beta(1, 1) prior), and the
    de-escalation boundary capped at the elimination boundary.

    For target 0.3: n=3 -> (0, 2, 3); n=6 -> (1, 3, 4); n=9 -> (2, 4, 5);
    n=12 -> (2, 5, 7).
    """
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"max_n must be a whole number of at least 1, got {max_n!r}")
    _check_cutoff(cutoff_eli)
    lambda_e, lambda_d = boin_boundaries(target, p_saf, p_tox)
    return [_boin_row(n, target, lambda_e, lambda_d, cutoff_eli) for n in range(1, max_n + 1)]


def boin_eliminated_doses(
    cohorts: Outcomes,
    *,
    num_doses: int,
    target: float,
    cutoff_eli: float = 0.95,
    extrasafe: bool = False,
    offset: float = 0.05,
) -> tuple[int, ...]:
    """Doses eliminated for toxicity by BOIN's safety rule (empty if none).

    Mirrors ``BOIN::select.mtd`` (and ``escalation``'s ``dose_admissible`` for
    BOIN): scanning from the lowest dose, the first dose with ``n >= 3`` and
    ``Pr(p > target | data) > cutoff_eli`` is eliminated together with every
    higher dose (``elimi[i:ndose] = 1; break``). With ``extrasafe``, all doses
    are eliminated if the lowest dose has ``n >= 3`` and
    ``Pr(p > target | data) > cutoff_eli - offset``.
    """
    _check_cutoff(cutoff_eli)
    parsed = _coerce(cohorts, num_doses)
    counts = tally(parsed, num_doses=num_doses)
    lowest: int | None = None
    for dose in range(1, num_doses + 1):
        t = counts[dose]
        if t.n >= 3 and prob_tox_exceeds(target, t.n, t.tox) > cutoff_eli:
            lowest = dose
            break
    if extrasafe:
        if not 0.0 <= offset < 0.5:
            # BOIN: if(offset>=0.5) "the offset is too large!"
            raise ValueError(f"offset must be between 0 and 0.5, got {offset}")
        first = counts[1]
        if first.n >= 3 and prob_tox_exceeds(target, first.n, first.tox) > cutoff_eli - offset:
            lowest = 1
    return tuple(range(lowest, num_doses + 1)) if lowest is not None else ()


def boin(
    cohorts: Outcomes,
    *,
    num_doses: int,
    target: float,
    cutoff_eli: float = 0.95,
    extrasafe: bool = False,
    offset: float = 0.05,
    p_saf: float | None = None,
    p_tox: float | None = None,
    use_stopping_rule: bool = True,
) -> Recommendation:
    """Next-dose advice from BOIN, matching ``escalation::get_boin`` (``R/boin_selector.R``).

    The decision uses the patients and DLTs at the dose the *last* cohort
    received and the :func:`boin_decision_table` column for that many patients
    (R: ``get.boundary(..., cohortsize = n_d + 1)$full_boundary_tab[, n_d]``):

    * No patients -> dose 1, continue (R: ``if(nrow(df) == 0) recommended_dose <- 1``).
    * DLTs <= escalation boundary -> escalate to the next dose; at the top
      dose stay there (R: ``pmin(num_doses, last_dose + 1)``); if the next
      dose is eliminated, stay (R: ``tox_r >= this_rec_bound['Eliminate ...']
      -> recommended_dose <- last_dose``). The trial continues.
    * DLTs >= de-escalation boundary -> if the elimination rule holds for the
      current dose, it and all higher doses are eliminated: at dose 1 the trial
      stops with no dose (``recommended_dose <- NA; continue <- FALSE``),
      otherwise go to the dose below and continue. Without elimination,
      de-escalate; at dose 1 stay at dose 1 and continue (R's default
      ``stop_when_deescalation_impossible = FALSE``).
    * Otherwise stay at the current dose.

    Where we go beyond ``escalation::get_boin`` (documented choices):

    * Eliminated doses are computed as in ``BOIN::select.mtd`` /
      ``escalation``'s ``dose_admissible`` (first dose, from the bottom, whose
      own data meet the rule, and everything above it), and the trial stops
      whenever dose 1 is eliminated, and no recommendation ever lands on an
      eliminated dose. On any path BOIN itself can generate this gives the
      same answer as ``get_boin``, which only inspects the current and next
      dose; it differs only on histories BOIN would not produce (e.g.
      ``1TTT 2NNN``, where ``get_boin`` would escalate to 3).
    * ``extrasafe`` follows ``BOIN::select.mtd``/``get.oc`` (stop if dose 1
      has ``n >= 3`` and ``Pr(p > target) > cutoff_eli - offset``).
      ``escalation::get_boin`` passes ``extrasafe`` only to ``get.boundary``,
      where it does not change the next-dose decision.
    * BOIN's ``n.earlystop`` sample-size stopping rule is not implemented:
      ``continue_`` is false only when dose 1 is eliminated.

    ``mtd`` is never set here (BOIN selects the MTD after the trial, with
    isotonic regression: see :func:`boin_select_mtd`).
    """
    _check_cutoff(cutoff_eli)
    lambda_e, lambda_d = boin_boundaries(target, p_saf, p_tox)
    parsed = _coerce(cohorts, num_doses)
    counts = tally(parsed, num_doses=num_doses)
    design = "BOIN"

    def go(dose: int | None, cont: bool, reason: str) -> Recommendation:
        return Recommendation(recommended_dose=dose, continue_=cont, reason=reason, design=design)

    if not parsed:
        # escalation get_boin: if(nrow(df) == 0) { recommended_dose <- 1; continue <- TRUE }
        return go(1, True, "No patients have been treated yet: start at dose 1.")

    eliminated = (
        boin_eliminated_doses(
            parsed, num_doses=num_doses, target=target, cutoff_eli=cutoff_eli, extrasafe=extrasafe, offset=offset
        )
        if use_stopping_rule
        else ()
    )
    lowest_eliminated = eliminated[0] if eliminated else None

    def posterior(dose: int) -> str:
        t = counts[dose]
        return (
            f"the probability that the DLT rate at dose {dose} exceeds the target {target:g} is "
            f"{prob_tox_exceeds(target, t.n, t.tox):.3f}"
        )

    if lowest_eliminated == 1:
        # BOIN get.boundary docs: "stop the trial if the lowest dose is eliminated due to toxicity, and
        # no dose should be selected as the MTD"; escalation get_boin, at dose 1:
        #   recommended_dose <- NA; continue <- FALSE
        first = counts[1]
        extrasafe_only = prob_tox_exceeds(target, first.n, first.tox) <= cutoff_eli
        threshold = f"{cutoff_eli - offset:g} (extra-safe rule)" if extrasafe_only else f"{cutoff_eli:g}"
        return go(
            None,
            False,
            f"{first.tox} of {first.n} patients at dose 1 had a DLT; {posterior(1)}, "
            f"above {threshold}, so dose 1 (the lowest dose) and all higher doses are eliminated "
            "for toxicity: stop the trial; no dose is recommended.",
        )

    dose = parsed[-1].dose
    t = counts[dose]
    row = _boin_row(t.n, target, lambda_e, lambda_d, cutoff_eli)
    rate = f"{t.tox} of {t.n} patients at dose {dose} had a DLT (rate {t.tox / t.n:.3f})"

    if t.tox <= row.escalate_at_most:
        why = (
            f"{rate}, at or below the escalation boundary {lambda_e:.4f} "
            f"(escalate if at most {_dlts(row.escalate_at_most)} in {t.n})"
        )
        if dose == num_doses:
            # escalation get_boin: recommended_dose <- pmin(num_doses, last_dose + 1)
            return go(dose, True, f"{why}, but dose {dose} is the highest dose: stay at dose {dose}.")
        if lowest_eliminated is not None and dose + 1 >= lowest_eliminated:
            # escalation get_boin: next dose eliminated -> recommended_dose <- last_dose
            stay = min(dose, lowest_eliminated - 1)
            return go(stay, True, f"{why}, but dose {dose + 1} has been eliminated for toxicity: stay at dose {stay}.")
        return go(dose + 1, True, f"{why}: escalate to dose {dose + 1}.")

    if t.tox >= row.deescalate_at_least:
        why = (
            f"{rate}, at or above the de-escalation boundary {lambda_d:.4f} "
            f"(de-escalate if at least {_dlts(row.deescalate_at_least)} in {t.n})"
        )
        if lowest_eliminated is not None and dose >= lowest_eliminated:
            # escalation get_boin: "Eliminate this dose and all higher doses" -> last_dose - 1, continue
            lower = lowest_eliminated - 1
            return go(
                lower,
                True,
                f"{why}; {posterior(lowest_eliminated)}, above {cutoff_eli:g}, so dose "
                f"{lowest_eliminated} and all higher doses are eliminated: "
                f"de-escalate to dose {lower}.",
            )
        if dose == 1:
            # escalation get_boin: if(recommended_dose <= 0) recommended_dose <- 1
            # (stop_when_deescalation_impossible = FALSE by default)
            return go(1, True, f"{why}, but dose 1 is the lowest dose: stay at dose 1.")
        return go(dose - 1, True, f"{why}: de-escalate to dose {dose - 1}.")

    # escalation get_boin: "As you were" -> recommended_dose <- last_dose
    stay = dose if lowest_eliminated is None else min(dose, lowest_eliminated - 1)
    return go(
        stay,
        True,
        f"{rate}, between the escalation boundary {lambda_e:.4f} and the de-escalation boundary "
        f"{lambda_d:.4f}: stay at dose {stay}.",
    )


def _pava(values: list[float], weights: list[float]) -> list[float]:
    """Pool-adjacent-violators exactly as the ``pava`` helper inside ``BOIN::select.mtd``."""
    x = list(values)
    n = len(x)
    if n <= 1:
        return x
    levels = list(range(n))
    while True:
        violations = [i for i in range(n - 1) if x[i + 1] - x[i] < 0]
        if not violations:
            return x
        i = violations[0]
        lvl1, lvl2 = levels[i], levels[i + 1]
        members = [j for j in range(n) if levels[j] in (lvl1, lvl2)]
        pooled = sum(x[j] * weights[j] for j in members) / sum(weights[j] for j in members)
        for j in members:
            x[j] = pooled
            levels[j] = lvl1


def boin_select_mtd(
    cohorts: Outcomes,
    *,
    num_doses: int,
    target: float,
    cutoff_eli: float = 0.95,
    extrasafe: bool = False,
    offset: float = 0.05,
    bound_mtd: bool = False,
    p_tox: float | None = None,
) -> int | None:
    """MTD selection at the end of a BOIN trial, as ``BOIN::select.mtd`` (``None`` for R's 99).

    Among treated, non-eliminated doses, estimate each DLT rate as
    ``(y + 0.05) / (n + 0.1)``, make the estimates non-decreasing with
    weighted isotonic regression (PAVA, weights ``1/var``), add ``i * 1e-10``
    to break ties towards the lower dose, and pick the dose whose estimate is
    closest to the target. ``bound_mtd`` additionally requires the estimate
    to be below ``lambda_d``.
    """
    parsed = _coerce(cohorts, num_doses)
    counts = tally(parsed, num_doses=num_doses)
    eliminated = set(
        boin_eliminated_doses(
            parsed, num_doses=num_doses, target=target, cutoff_eli=cutoff_eli, extrasafe=extrasafe, offset=offset
        )
    )
    # select.mtd: if (elimi[1] == 1 || sum(n[elimi == 0]) == 0) selectdose = 99
    if 1 in eliminated or sum(counts[d].n for d in counts if d not in eliminated) == 0:
        return None
    admissible = [d for d in range(1, num_doses + 1) if counts[d].n > 0 and d not in eliminated]
    y = [counts[d].tox for d in admissible]
    n = [counts[d].n for d in admissible]
    phat = [(yi + 0.05) / (ni + 0.1) for yi, ni in zip(y, n, strict=True)]
    var = [(yi + 0.05) * (ni - yi + 0.05) / ((ni + 0.1) ** 2 * (ni + 0.1 + 1)) for yi, ni in zip(y, n, strict=True)]
    phat = _pava(phat, [1 / v for v in var])
    # select.mtd: phat = phat + (1:length(phat)) * 1e-10
    phat = [p + (i + 1) * 1e-10 for i, p in enumerate(phat)]
    candidates = list(range(len(phat)))
    if bound_mtd:
        _, lambda_d = boin_boundaries(target, None, p_tox)
        if all(p >= lambda_d for p in phat):
            return None
        candidates = [i for i in candidates if phat[i] < lambda_d]
    # select.mtd: sort(abs(phat - target), index.return = T)$ix[1]  (stable: first of ties)
    best = min(candidates, key=lambda i: abs(phat[i] - target))
    return admissible[best]


def boin_mtd_selection(cohorts: Outcomes, *, num_doses: int, target: float, cutoff_eli: float = 0.95) -> MtdSelection:
    """:func:`boin_select_mtd` as an :class:`MtdSelection` (the estimate closest to the target among
    treated, non-eliminated doses; none when dose 1 is eliminated or nobody was treated)."""
    parsed = _coerce(cohorts, num_doses)
    dose = boin_select_mtd(parsed, num_doses=num_doses, target=target, cutoff_eli=cutoff_eli)
    if dose is None:
        if not parsed:
            return MtdSelection("none", None, "Nobody has been treated: there is no MTD.")
        return MtdSelection("none", None, "Dose 1 is eliminated for toxicity: no MTD (BOIN select.mtd).")
    t = tally(parsed, num_doses=num_doses)[dose]
    return MtdSelection(
        "mtd", dose, f"Dose {dose} ({t.tox} of {t.n} patients had a DLT) has the isotonic estimate of the DLT "
        f"rate closest to the target {target:g} among the treated, non-eliminated doses (BOIN select.mtd).",
    )  # fmt: skip


def select_mtd(design: str, outcomes: Outcomes, *, num_doses: int, target: float = 0.3) -> MtdSelection:
    """The MTD selection of a design by name (``"3+3"`` or ``"boin"``)."""
    if _canonical_design(design) == "3+3":
        return three_plus_three_select_mtd(outcomes, num_doses=num_doses)
    return boin_mtd_selection(outcomes, num_doses=num_doses, target=target)


# ---------------------------------------------------------------------------
# Dispatcher for the CLI / side-by-side comparison
# ---------------------------------------------------------------------------

#: Canonical design names and the spellings accepted by :func:`recommend`.
DESIGNS: Mapping[str, tuple[str, ...]] = {
    "3+3": ("3+3", "three_plus_three", "three-plus-three", "threeplusthree", "3plus3"),
    "boin": ("boin",),
}


def _canonical_design(design: str) -> str:
    key = design.strip().lower() if isinstance(design, str) else design
    for name, aliases in DESIGNS.items():
        if key in aliases:
            return name
    known = ", ".join(f'"{name}"' for name in DESIGNS)
    raise ValueError(f"unknown design {design!r}: choose one of {known}")


def recommend(
    design: str,
    outcomes: Outcomes,
    *,
    num_doses: int,
    target: float = 0.3,
    allow_deescalate: bool = False,
    strict: bool = True,
    cutoff_eli: float = 0.95,
    extrasafe: bool = False,
) -> Recommendation:
    """Run one design by name (``"3+3"`` or ``"boin"``) on an outcome string.

    ``target``, ``cutoff_eli`` and ``extrasafe`` are used by BOIN only;
    ``allow_deescalate`` and ``strict`` by 3+3 only. An unknown design name
    raises ``ValueError`` listing the known names.
    """
    name = _canonical_design(design)
    if name == "3+3":
        return three_plus_three(outcomes, num_doses=num_doses, allow_deescalate=allow_deescalate, strict=strict)
    return boin(outcomes, num_doses=num_doses, target=target, cutoff_eli=cutoff_eli, extrasafe=extrasafe)


def compare(
    outcomes: Outcomes, *, num_doses: int, target: float = 0.3, allow_deescalate: bool = False, strict: bool = True
) -> dict[str, Recommendation]:
    """Both designs' advice for the same outcomes, keyed ``"3+3"`` and ``"boin"``."""
    return {
        name: recommend(
            name, outcomes, num_doses=num_doses, target=target, allow_deescalate=allow_deescalate, strict=strict
        )
        for name in DESIGNS
    }
