"""BOIN, matching the R package ``BOIN`` (Yuan et al.) and ``escalation::get_boin`` (pure: stdlib only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from safety.rules.notation import (
    Outcomes,
    Recommendation,
    coerce_outcomes,
    dlts_text,
    tally,
)


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
    parsed = coerce_outcomes(cohorts, num_doses)
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
    parsed = coerce_outcomes(cohorts, num_doses)
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
            f"(escalate if at most {dlts_text(row.escalate_at_most)} in {t.n})"
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
            f"(de-escalate if at least {dlts_text(row.deescalate_at_least)} in {t.n})"
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
