"""The common outcome notation (``"1NNN 2NTN"``: a dose level, then N or T per patient), the tally per
dose, and the advice a design gives (pure: stdlib only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_DIGITS = "0123456789"
_OUTCOME_LETTERS = "NT"


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
        check_num_doses(num_doses)
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


def check_num_doses(num_doses: int) -> None:
    if isinstance(num_doses, bool) or not isinstance(num_doses, int) or num_doses < 1:
        raise ValueError(f"num_doses must be a whole number of at least 1, got {num_doses!r}")


def coerce_outcomes(outcomes: Outcomes, num_doses: int) -> list[CohortOutcome]:
    """Accept an outcome string or parsed cohorts; check doses against ``num_doses``."""
    check_num_doses(num_doses)
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


def patients_text(n: int) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def dlts_text(n: int) -> str:
    return f"{n} DLT" if n == 1 else f"{n} DLTs"
