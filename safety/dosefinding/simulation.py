"""Operating characteristics of a design under a scenario of true DLT rates, by simulation or exactly.

Pure (stdlib only). A simulated trial follows the design as a trial would: cohorts are treated at the
dose the design recommends, each patient has a DLT with the dose's true probability, and the design's
answer (``safety.rules`` through :class:`Design`) decides the next dose until it stops. At the end the MTD
is selected by the design's own rule: ``rules.three_plus_three_select_mtd`` for 3+3 (whose "MTD not
reached", "not determined" and "none" are reported separately, not as selections) and
``rules.boin_select_mtd`` (``BOIN::select.mtd``) for BOIN.

BOIN trials run as ``BOIN::get.oc``: ``max_cohorts`` cohorts of ``cohort_size`` (its ``ncohort`` and
``cohortsize``), starting at dose 1, stopping early only when dose 1 is eliminated, or, with
``n_earlystop``, when the current dose has that many patients and the design would stay there (get.oc's
``n.earlystop`` rule: ``n[d] >= n.earlystop`` and the next dose is ``d``). 3+3 trials run until the
design stops.

The design's decision depends only on the tallies per dose and the current dose, so each decision is
computed once per state and remembered: that is what makes 10,000 trials take a fraction of a second.
The same memo drives :func:`exact_operating_characteristics`, which enumerates every outcome of every
cohort with its binomial probability: no Monte Carlo error, used to check the simulation.

Reproducible: ``random.Random(seed)`` draws one uniform number per patient in enrolment order (as get.oc
draws ``runif(cohortsize)``); a given seed gives the same figures on every machine.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from safety import rules
from safety.dosefinding.designs import Design, check_probabilities, check_whole_number
from safety.dosefinding.report import OperatingCharacteristics

__all__ = [
    "MTD_STATUSES",
    "OperatingCharacteristics",
    "exact_operating_characteristics",
    "simulate_operating_characteristics",
]

#: How a trial ends, by the design's MTD selection (``rules.MtdSelection.status``).
MTD_STATUSES = ("mtd", "not_reached", "not_determined", "none")

_MAX_TRIALS = 1_000_000
_MAX_COHORTS_WITHOUT_LIMIT = 200  # a 3+3 stops long before this; a guard against a design that never does


def _history(dose: int, n: Sequence[int], y: Sequence[int]) -> list[rules.CohortOutcome]:
    """A history with these tallies whose last cohort is at ``dose`` (the rules read tallies + last dose)."""
    cohorts = [
        rules.CohortOutcome(dose=d + 1, outcomes="T" * y[d] + "N" * (n[d] - y[d]))
        for d in range(len(n))
        if n[d] and d + 1 != dose
    ]
    cohorts.append(rules.CohortOutcome(dose=dose, outcomes="T" * y[dose - 1] + "N" * (n[dose - 1] - y[dose - 1])))
    return cohorts


class _Machine:
    """Remembers the design's answer for each (current dose, tallies) and its MTD selection per tallies."""

    def __init__(self, design: Design) -> None:
        self.design = design
        self.decisions: dict[tuple[int, tuple[int, ...], tuple[int, ...]], tuple[int | None, bool]] = {}
        self.selections: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[str, int | None]] = {}
        self.start = design.recommend("").recommended_dose or 1

    def decide(self, dose: int, n: tuple[int, ...], y: tuple[int, ...]) -> tuple[int | None, bool]:
        key = (dose, n, y)
        answer = self.decisions.get(key)
        if answer is None:
            advice = self.design.recommend(_history(dose, n, y))
            answer = (advice.recommended_dose, advice.continue_)
            self.decisions[key] = answer
        return answer

    def select(self, n: tuple[int, ...], y: tuple[int, ...], last_dose: int) -> tuple[str, int | None]:
        key = (n, y)
        answer = self.selections.get(key)
        if answer is None:
            history = _history(last_dose, n, y)
            num_doses = self.design.num_doses
            if self.design.name == "3+3":
                chosen = rules.three_plus_three_select_mtd(history, num_doses=num_doses)
                answer = (chosen.status, chosen.dose)
            else:
                dose = rules.boin_select_mtd(
                    history, num_doses=num_doses, target=self.design.target, cutoff_eli=self.design.cutoff_eli
                )
                answer = ("mtd", dose) if dose is not None else ("none", None)
            self.selections[key] = answer
        return answer


class _Totals:
    """Probability-weighted sums over finished trials (weights are 1 per simulated trial, or exact)."""

    def __init__(self, num_doses: int) -> None:
        self.num_doses = num_doses
        self.weight = 0.0
        self.selection = [0.0] * self.num_doses
        self.treated = [0.0] * self.num_doses
        self.dlts = [0.0] * self.num_doses
        self.at_stop = [0.0] * self.num_doses
        self.outcomes = dict.fromkeys(MTD_STATUSES, 0.0)
        self.stop_early = 0.0

    def add(
        self,
        weight: float,
        n: tuple[int, ...],
        y: tuple[int, ...],
        status: str,
        mtd: int | None,
        stopped: bool,
        rec: int | None,
    ) -> None:
        self.weight += weight
        for d in range(self.num_doses):
            self.treated[d] += weight * n[d]
            self.dlts[d] += weight * y[d]
        self.outcomes[status] += weight
        if mtd is not None:
            self.selection[mtd - 1] += weight
        if stopped:
            if rec is None:
                self.stop_early += weight
            else:
                self.at_stop[rec - 1] += weight


def _check_run(
    design: Design, true_rates: Sequence[float], cohort_size: int, max_cohorts: int | None, n_earlystop: int | None
) -> tuple[float, ...]:
    if not isinstance(design, Design):
        raise TypeError("design must be a Design (see make_design)")
    rates = check_probabilities(true_rates)
    if len(rates) != design.num_doses:
        raise ValueError(f"{len(rates)} true rates given for a design with {design.num_doses} doses")
    check_whole_number(cohort_size, "cohort_size")
    if design.name == "3+3" and cohort_size != 3:
        raise ValueError(f"the 3+3 treats cohorts of 3, not {cohort_size}")
    if max_cohorts is not None:
        check_whole_number(max_cohorts, "max_cohorts")
    elif design.name == "boin":
        raise ValueError("BOIN needs max_cohorts, the number of cohorts of a trial (get.oc's ncohort)")
    if n_earlystop is not None:
        check_whole_number(n_earlystop, "n_earlystop")
    return rates


def _result(
    design: Design,
    rates: tuple[float, ...],
    totals: _Totals,
    *,
    method: str,
    trials: int | None,
    seed: int | None,
    cohort_size: int,
    max_cohorts: int | None,
    n_earlystop: int | None,
) -> OperatingCharacteristics:
    w = totals.weight
    selection = tuple(s / w for s in totals.selection)
    se = None
    if trials is not None:
        se = tuple(math.sqrt(p * (1 - p) / trials) for p in selection)
    outcomes = {status: totals.outcomes[status] / w for status in MTD_STATUSES}
    if design.name == "boin":
        outcomes = {"mtd": outcomes["mtd"], "none": outcomes["none"]}
    return OperatingCharacteristics(
        design=design,
        true_rates=rates,
        method=method,
        trials=trials,
        seed=seed,
        cohort_size=cohort_size,
        max_cohorts=max_cohorts,
        n_earlystop=n_earlystop,
        selection=selection,
        mean_treated=tuple(t / w for t in totals.treated),
        mean_dlts=tuple(t / w for t in totals.dlts),
        mean_sample_size=math.fsum(totals.treated) / w,
        mean_total_dlts=math.fsum(totals.dlts) / w,
        outcomes=outcomes,
        prob_no_mtd=1.0 - math.fsum(selection),
        prob_stop_early=totals.stop_early / w,
        recommended_at_stop=tuple(a / w for a in totals.at_stop) if design.name == "3+3" else None,
        selection_se=se,
    )


def _step(
    machine: _Machine,
    dose: int,
    n: list[int],
    y: list[int],
    cohorts_done: int,
    max_cohorts: int | None,
    n_earlystop: int | None,
) -> tuple[bool, bool, int | None]:
    """After a cohort at ``dose``: (finished, design stopped, the design's next dose)."""
    rec, cont = machine.decide(dose, tuple(n), tuple(y))
    if not cont:
        return True, True, rec
    if max_cohorts is not None and cohorts_done >= max_cohorts:
        return True, False, rec
    if n_earlystop is not None and n[dose - 1] >= n_earlystop and rec == dose:
        # BOIN get.oc: if (n[d] >= n.earlystop && <the next dose is d>) break
        return True, False, rec
    if cohorts_done >= _MAX_COHORTS_WITHOUT_LIMIT:
        raise RuntimeError(f"the design did not stop after {cohorts_done} cohorts")
    return False, False, rec


def simulate_operating_characteristics(
    design: Design,
    true_rates: Sequence[float],
    *,
    trials: int,
    seed: int,
    cohort_size: int = 3,
    max_cohorts: int | None = None,
    n_earlystop: int | None = None,
) -> OperatingCharacteristics:
    """Simulate ``trials`` trials of ``design`` with ``true_rates`` (one DLT probability per dose).

    ``seed`` (a whole number) makes the run reproducible. BOIN needs ``max_cohorts``; for 3+3 it is an
    optional cap (a 3+3 stops by itself). ``n_earlystop`` is BOIN's get.oc rule (off by default, as
    ``n.earlystop = 100`` is there).
    """
    rates = _check_run(design, true_rates, cohort_size, max_cohorts, n_earlystop)
    check_whole_number(trials, "trials")
    if trials > _MAX_TRIALS:
        raise ValueError(f"at most {_MAX_TRIALS} trials, got {trials}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    machine = _Machine(design)
    draw: Callable[[], float] = random.Random(seed).random
    totals = _Totals(design.num_doses)
    num_doses = design.num_doses
    for _ in range(trials):
        n = [0] * num_doses
        y = [0] * num_doses
        dose = machine.start
        cohorts_done = 0
        while True:
            p = rates[dose - 1]
            dlts = 0
            for _patient in range(cohort_size):
                if draw() < p:
                    dlts += 1
            n[dose - 1] += cohort_size
            y[dose - 1] += dlts
            cohorts_done += 1
            finished, stopped, rec = _step(machine, dose, n, y, cohorts_done, max_cohorts, n_earlystop)
            if finished:
                break
            dose = rec
        tn, ty = tuple(n), tuple(y)
        status, mtd = machine.select(tn, ty, dose)
        totals.add(1.0, tn, ty, status, mtd, stopped, rec)
    return _result(
        design,
        rates,
        totals,
        method="simulation",
        trials=trials,
        seed=seed,
        cohort_size=cohort_size,
        max_cohorts=max_cohorts,
        n_earlystop=n_earlystop,
    )


def exact_operating_characteristics(
    design: Design,
    true_rates: Sequence[float],
    *,
    cohort_size: int = 3,
    max_cohorts: int | None = None,
    n_earlystop: int | None = None,
) -> OperatingCharacteristics:
    """The same figures as :func:`simulate_operating_characteristics`, computed exactly.

    Every cohort's number of DLTs is enumerated with its binomial probability and identical states are
    merged, so the cost grows with the number of distinct states, not of paths (fine for the 3+3 and for
    BOIN up to about 5 doses and 10 cohorts).
    """
    rates = _check_run(design, true_rates, cohort_size, max_cohorts, n_earlystop)
    machine = _Machine(design)
    totals = _Totals(design.num_doses)
    zeros = (0,) * design.num_doses
    states: dict[tuple[int, tuple[int, ...], tuple[int, ...]], float] = {(machine.start, zeros, zeros): 1.0}
    pmf_cache: dict[tuple[int, float], list[float]] = {}
    cohorts_done = 0
    while states:
        cohorts_done += 1
        following: dict[tuple[int, tuple[int, ...], tuple[int, ...]], float] = defaultdict(float)
        for (dose, n0, y0), weight in states.items():
            p = rates[dose - 1]
            pmf = pmf_cache.get((cohort_size, p))
            if pmf is None:
                pmf = [math.comb(cohort_size, k) * p**k * (1 - p) ** (cohort_size - k) for k in range(cohort_size + 1)]
                pmf_cache[(cohort_size, p)] = pmf
            for dlts, chance in enumerate(pmf):
                if chance == 0.0:
                    continue
                n = list(n0)
                y = list(y0)
                n[dose - 1] += cohort_size
                y[dose - 1] += dlts
                finished, stopped, rec = _step(machine, dose, n, y, cohorts_done, max_cohorts, n_earlystop)
                tn, ty = tuple(n), tuple(y)
                if finished:
                    status, mtd = machine.select(tn, ty, dose)
                    totals.add(weight * chance, tn, ty, status, mtd, stopped, rec)
                else:
                    following[(rec, tn, ty)] += weight * chance
        states = following
    return _result(
        design,
        rates,
        totals,
        method="exact",
        trials=None,
        seed=None,
        cohort_size=cohort_size,
        max_cohorts=max_cohorts,
        n_earlystop=n_earlystop,
    )
