"""Each design's own MTD selection over the data, never the recommended next dose (pure: stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass

from safety.rules.boin import boin_boundaries, boin_eliminated_doses
from safety.rules.designs import canonical_design
from safety.rules.notation import (
    Outcomes,
    coerce_outcomes,
    tally,
)


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
        return {
            "status": self.status,
            "dose": self.dose,
            "highest_cleared": self.highest_cleared,
            "reason": self.reason,
        }

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
    counts = tally(coerce_outcomes(cohorts, num_doses), num_doses=num_doses)
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
            "not_reached",
            None,
            f"No dose was too toxic: the MTD was not reached. The highest dose cleared is dose {top} "
            f"({t.tox} of {t.n} patients had a DLT).",
            highest_cleared=top,
        )
    toxic_tally = counts[lowest_toxic]
    too_toxic = f"dose {lowest_toxic} is too toxic ({toxic_tally.tox} of {toxic_tally.n} patients had a DLT)"
    if not confirmed:
        below = counts[lowest_toxic - 1]
        return MtdSelection(
            "not_determined",
            None,
            f"{too_toxic.capitalize()}, and no lower dose has at least 6 patients with at most 1 DLT "
            f"(dose {lowest_toxic - 1}: {below.tox} of {below.n}): the 3+3 declares no MTD on fewer than 6 patients.",
        )
    mtd = max(confirmed)
    t = counts[mtd]
    return MtdSelection(
        "mtd",
        mtd,
        f"{too_toxic.capitalize()}; dose {mtd} is the highest dose below it with at least 6 patients "
        f"and at most 1 DLT ({t.tox} of {t.n}).",
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
    parsed = coerce_outcomes(cohorts, num_doses)
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
    parsed = coerce_outcomes(cohorts, num_doses)
    dose = boin_select_mtd(parsed, num_doses=num_doses, target=target, cutoff_eli=cutoff_eli)
    if dose is None:
        if not parsed:
            return MtdSelection("none", None, "Nobody has been treated: there is no MTD.")
        return MtdSelection("none", None, "Dose 1 is eliminated for toxicity: no MTD (BOIN select.mtd).")
    t = tally(parsed, num_doses=num_doses)[dose]
    return MtdSelection(
        "mtd",
        dose,
        f"Dose {dose} ({t.tox} of {t.n} patients had a DLT) has the isotonic estimate of the DLT "
        f"rate closest to the target {target:g} among the treated, non-eliminated doses (BOIN select.mtd).",
    )


def select_mtd(design: str, outcomes: Outcomes, *, num_doses: int, target: float = 0.3) -> MtdSelection:
    """The MTD selection of a design by name (``"3+3"`` or ``"boin"``)."""
    if canonical_design(design) == "3+3":
        return three_plus_three_select_mtd(outcomes, num_doses=num_doses)
    return boin_mtd_selection(outcomes, num_doses=num_doses, target=target)
