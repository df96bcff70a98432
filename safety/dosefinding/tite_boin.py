"""TITE-BOIN: BOIN decisions while some participants are still inside their DLT window.

Pure (stdlib only). Yuan Y, Lin R, Li D, Nie L, Warren KE. "Time-to-Event Bayesian Optimal Interval
Design to Accelerate Phase I Trials", Clin Cancer Res 2018;24:4921-30 (single mean imputation under a
uniform time to DLT). At the current dose d, with n participants treated, y observed DLTs and c pending
participants (no DLT so far and the window not yet completed):

* STFT, the standardized total follow-up time, is the pending participants' follow-up divided by the
  window length, summed (each follow-up counted up to the window);
* the DLT probability is estimated from the completed data under the prior Beta(target/2, 1 - target/2):
  ``pi_hat = (y + target/2) / (n - c + 1)``;
* each pending participant's DLT is imputed by its expectation, which gives
  ``p_tilde = (y + pi_hat / (1 - pi_hat) * (c - STFT)) / n`` (with c = 0 this is y / n: BOIN);
* escalate if ``p_tilde <= lambda_e``, de-escalate if ``p_tilde >= lambda_d`` and the observed rate
  ``y / n`` is above the target, otherwise stay; ``lambda_e``/``lambda_d`` are BOIN's boundaries. The
  condition on ``y / n`` keeps imputed (not observed) DLTs from forcing a de-escalation while the observed
  rate is still at or below the target; it is what the published TITE-BOIN decision tables show (e.g. 6
  treated, 1 DLT, 3 pending: one answer whatever the STFT) and what the public implementations do;
* accrual suspension: if more than half of the participants at the current dose are pending (c > n/2)
  and the observed rate is below ``lambda_d``, accrual is suspended until more data are in. Exactly half
  pending is not suspended (the tables: 6 treated, 0 DLT, 3 pending escalates; 4 pending suspends);
* safety: BOIN's elimination rule on the observed DLTs among all treated (``Pr(p > target | y, n) >
  cutoff_eli`` with n >= 3, as ``get.boundary``), and the trial stops when dose 1 is eliminated.

With nobody pending at the current dose the answer is ``rules.boin`` itself on the same data (pending
participants at other doses count as treated without a DLT, as they do for elimination), so with full
follow-up TITE-BOIN reduces exactly to BOIN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from safety import rules
from safety.dosefinding.designs import check_whole_number, make_design

__all__ = [
    "TiteBoinEstimate",
    "TiteBoinRecommendation",
    "TiteBoinRow",
    "TiteParticipant",
    "tite_boin",
    "tite_boin_decision_table",
    "tite_boin_estimate",
]


@dataclass(frozen=True, slots=True)
class TiteParticipant:
    """One treated participant: the dose given, the DLT outcome so far and the follow-up.

    ``dlt`` is ``True`` (a DLT), ``False`` (the window completed without a DLT) or ``None`` (pending: no
    DLT yet). ``followup_days`` is the time since the start of the DLT window; ``window_days`` its length.
    A pending participant whose follow-up has reached the window (an outcome not yet confirmed) stays
    pending, with her follow-up counted as the whole window.
    """

    dose: int
    dlt: bool | None
    followup_days: float
    window_days: float = 28.0

    def __post_init__(self) -> None:
        check_whole_number(self.dose, "dose")
        if not (self.dlt is None or isinstance(self.dlt, bool)):
            raise ValueError(f"dlt must be True, False or None (pending), got {self.dlt!r}")
        for name in ("followup_days", "window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of days, got {value!r}")
        if self.followup_days < 0:
            raise ValueError(f"followup_days cannot be negative, got {self.followup_days!r}")
        if self.window_days <= 0:
            raise ValueError(f"window_days must be positive, got {self.window_days!r}")
        if self.dlt is False and self.followup_days < self.window_days:
            raise ValueError(
                f"a participant at dose {self.dose} is recorded without a DLT after {self.followup_days:g} of "
                f"{self.window_days:g} days: no DLT is known only once the window is complete; use None (pending)"
            )

    @property
    def pending(self) -> bool:
        return self.dlt is None

    @property
    def followup_fraction(self) -> float:
        """Follow-up as a fraction of the window, at most 1."""
        return min(self.followup_days / self.window_days, 1.0)


@dataclass(frozen=True, slots=True)
class TiteBoinEstimate:
    """The numbers TITE-BOIN uses at one dose."""

    n: int
    dlts: int
    pending: int
    stft: float
    pi_hat: float
    imputed_dlts: float
    estimated_rate: float

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "dlts": self.dlts,
            "pending": self.pending,
            "completed": self.n - self.pending,
            "stft": self.stft,
            "pi_hat": self.pi_hat,
            "imputed_dlts": self.imputed_dlts,
            "estimated_rate": self.estimated_rate,
        }


def tite_boin_estimate(*, n: int, dlts: int, pending: int, stft: float, target: float) -> TiteBoinEstimate:
    """``p_tilde`` of Yuan et al. (2018) at one dose (see the module docstring for the formulas)."""
    check_whole_number(n, "n")
    if not (0 <= dlts <= n and 0 <= pending <= n - dlts):
        raise ValueError(f"need 0 <= dlts and 0 <= pending with dlts + pending <= n; got {dlts}, {pending}, {n}")
    if not 0 <= stft <= pending:
        raise ValueError(f"STFT must lie between 0 and the number pending ({pending}), got {stft}")
    alpha = target / 2  # prior Beta(target/2, 1 - target/2): prior sample size 1, prior mean target/2
    completed = n - pending
    pi_hat = (dlts + alpha) / (completed + 1)
    odds = (dlts + alpha) / (completed - dlts + 1 - alpha)
    imputed = dlts + odds * (pending - stft) if pending else float(dlts)
    return TiteBoinEstimate(
        n=n, dlts=dlts, pending=pending, stft=stft, pi_hat=pi_hat, imputed_dlts=imputed, estimated_rate=imputed / n
    )


@dataclass(frozen=True, slots=True)
class TiteBoinRecommendation:
    """Like ``rules.Recommendation``, plus ``suspended`` and the numbers used.

    While ``suspended`` is true nobody is to be dosed: ``recommended_dose`` is ``None`` and ``continue_``
    true (the trial goes on once pending outcomes are in). ``estimate`` is the current dose's numbers;
    ``eliminated`` the doses removed for toxicity.
    """

    recommended_dose: int | None
    continue_: bool
    reason: str
    suspended: bool
    current_dose: int | None
    estimate: TiteBoinEstimate | None
    lambda_e: float
    lambda_d: float
    eliminated: tuple[int, ...] = ()
    design: str = "TITE-BOIN"
    mtd: int | None = None

    def recommendation(self) -> rules.Recommendation:
        """As a plain ``rules.Recommendation`` (drops ``suspended`` and the numbers)."""
        return rules.Recommendation(
            recommended_dose=self.recommended_dose, continue_=self.continue_, reason=self.reason, design=self.design
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "recommended_dose": self.recommended_dose,
            "continue": self.continue_,
            "reason": self.reason,
            "suspended": self.suspended,
            "numbers": {
                "current_dose": self.current_dose,
                "lambda_e": self.lambda_e,
                "lambda_d": self.lambda_d,
                "eliminated": list(self.eliminated),
                **(self.estimate.to_dict() if self.estimate else {}),
            },
        }


def _full_data_cohorts(participants: Sequence[TiteParticipant], current: int) -> list[rules.CohortOutcome]:
    """Everyone as N/T (pending as N), in order, with the current dose's participants last."""
    others = [p for p in participants if p.dose != current]
    here = [p for p in participants if p.dose == current]
    return [rules.CohortOutcome(dose=p.dose, outcomes="T" if p.dlt else "N") for p in [*others, *here]]


def tite_boin(
    participants: Sequence[TiteParticipant],
    *,
    num_doses: int,
    target: float,
    current_dose: int | None = None,
    cutoff_eli: float = 0.95,
    max_pending_fraction: float = 0.5,
) -> TiteBoinRecommendation:
    """The TITE-BOIN decision for the next participant.

    ``participants`` are everyone treated so far, in the order treated; the current dose is the last
    one's dose unless ``current_dose`` is given. ``max_pending_fraction`` is the suspension threshold
    (accrual is suspended when more than this fraction of the current dose's participants are pending).
    """
    design = make_design("boin", num_doses=num_doses, target=target, cutoff_eli=cutoff_eli)
    if (
        isinstance(max_pending_fraction, bool)
        or not isinstance(max_pending_fraction, int | float)
        or not (0 < max_pending_fraction < 1)
    ):
        raise ValueError(f"max_pending_fraction must lie strictly between 0 and 1, got {max_pending_fraction!r}")
    people = list(participants)
    for index, person in enumerate(people, start=1):
        if not isinstance(person, TiteParticipant):
            raise TypeError(f"participant {index} must be a TiteParticipant, got {type(person).__name__}")
        if person.dose > num_doses:
            raise ValueError(f"participant {index} is at dose {person.dose}, above the highest dose ({num_doses})")
    lambda_e, lambda_d = rules.boin_boundaries(design.target)

    def answer(
        dose: int | None,
        cont: bool,
        reason: str,
        *,
        suspended: bool = False,
        current: int | None = None,
        estimate: TiteBoinEstimate | None = None,
        eliminated: tuple[int, ...] = (),
    ) -> TiteBoinRecommendation:
        return TiteBoinRecommendation(
            recommended_dose=dose,
            continue_=cont,
            reason=reason,
            suspended=suspended,
            current_dose=current,
            estimate=estimate,
            lambda_e=lambda_e,
            lambda_d=lambda_d,
            eliminated=eliminated,
        )

    if not people:
        advice = design.recommend([])  # BOIN: nobody treated -> dose 1
        return answer(advice.recommended_dose, advice.continue_, advice.reason)
    current = people[-1].dose if current_dose is None else check_whole_number(current_dose, "current_dose")
    if current > num_doses:
        raise ValueError(f"current_dose {current} is above the highest dose ({num_doses})")
    here = [p for p in people if p.dose == current]
    if not here:
        raise ValueError(f"nobody has been treated at the current dose {current}")
    cohorts = _full_data_cohorts(people, current)
    eliminated = rules.boin_eliminated_doses(
        cohorts, num_doses=num_doses, target=design.target, cutoff_eli=design.cutoff_eli
    )
    n = len(here)
    dlts = sum(1 for p in here if p.dlt)
    pending = [p for p in here if p.pending]
    stft = math.fsum(p.followup_fraction for p in pending)
    estimate = tite_boin_estimate(n=n, dlts=dlts, pending=len(pending), stft=stft, target=design.target)
    context = {"current": current, "estimate": estimate, "eliminated": eliminated}

    if not pending or (eliminated and (eliminated[0] == 1 or current >= eliminated[0])):
        # Nothing pending here, or the safety rule decides: BOIN's answer (rules.boin) on the same data.
        advice = design.recommend(cohorts)
        return answer(advice.recommended_dose, advice.continue_, advice.reason, **context)

    seen = (
        f"{dlts} of {n} participants at dose {current} had a DLT, {len(pending)} still pending "
        f"(standardized follow-up {stft:.2f})"
    )
    observed = dlts / n
    if len(pending) > max_pending_fraction * n and observed < lambda_d:
        # Yuan et al. 2018: suspend accrual when more than 50% of the patients at the current dose are pending.
        return answer(
            None,
            True,
            f"{seen}: more than {max_pending_fraction:.0%} of the participants at dose {current} are pending, so "
            "accrual is suspended until more DLT outcomes are in; nobody is to be dosed now.",
            suspended=True,
            **context,
        )
    rate = f"{seen}; imputed DLT rate {estimate.estimated_rate:.3f}"
    lowest_eliminated = eliminated[0] if eliminated else None
    if estimate.estimated_rate <= lambda_e:
        why = f"{rate}, at or below the escalation boundary {lambda_e:.4f}"
        if current == num_doses:
            return answer(
                current, True, f"{why}, but dose {current} is the highest dose: stay at dose {current}.", **context
            )
        if lowest_eliminated is not None and current + 1 >= lowest_eliminated:
            return answer(
                current,
                True,
                f"{why}, but dose {current + 1} has been eliminated for toxicity: stay at dose {current}.",
                **context,
            )
        return answer(current + 1, True, f"{why}: escalate to dose {current + 1}.", **context)
    if estimate.estimated_rate >= lambda_d and observed > design.target:
        why = (
            f"{rate}, at or above the de-escalation boundary {lambda_d:.4f}, and the observed rate is above the target"
        )
        if current == 1:
            return answer(1, True, f"{why}, but dose 1 is the lowest dose: stay at dose 1.", **context)
        return answer(current - 1, True, f"{why}: de-escalate to dose {current - 1}.", **context)
    return answer(
        current,
        True,
        f"{rate}, between the escalation boundary {lambda_e:.4f} and the de-escalation boundary {lambda_d:.4f} "
        f"(or the observed rate is not above the target): stay at dose {current}.",
        **context,
    )


@dataclass(frozen=True, slots=True)
class TiteBoinRow:
    """One row of the TITE-BOIN decision table: ``n`` treated, ``dlts`` observed, ``pending`` pending.

    ``action`` is ``escalate``, ``stay``, ``de-escalate``, ``eliminate`` or ``suspend`` when it does not
    depend on the follow-up; otherwise ``"depends on STFT"`` with ``escalate_if_stft_at_least`` (escalate
    when STFT >= it, else stay) or ``deescalate_if_stft_at_most`` (de-escalate when STFT <= it, else stay).
    """

    n: int
    dlts: int
    pending: int
    action: str
    escalate_if_stft_at_least: float | None = None
    deescalate_if_stft_at_most: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "dlts": self.dlts,
            "pending": self.pending,
            "action": self.action,
            "escalate_if_stft_at_least": self.escalate_if_stft_at_least,
            "deescalate_if_stft_at_most": self.deescalate_if_stft_at_most,
        }


def tite_boin_decision_table(
    target: float,
    max_n: int,
    *,
    cohort_size: int = 3,
    cutoff_eli: float = 0.95,
    max_pending_fraction: float = 0.5,
) -> list[TiteBoinRow]:
    """The TITE-BOIN rule tabulated before the trial, as in Yuan et al. (2018) Table 1.

    For n = cohort_size, 2 * cohort_size, ... up to ``max_n`` treated at a dose, each number of DLTs and
    each number pending. The STFT thresholds solve ``p_tilde = lambda_e`` (escalation) and ``p_tilde =
    lambda_d`` (de-escalation) for the STFT; the STFT of c pending participants lies in [0, c).
    """
    design = make_design("boin", num_doses=1, target=target, cutoff_eli=cutoff_eli)
    check_whole_number(max_n, "max_n")
    check_whole_number(cohort_size, "cohort_size")
    lambda_e, lambda_d = rules.boin_boundaries(design.target)
    boundaries = {b.n: b for b in rules.boin_decision_table(design.target, max_n, design.cutoff_eli)}
    rows = []
    for n in range(cohort_size, max_n + 1, cohort_size):
        b = boundaries[n]
        for dlts in range(n + 1):
            for pending in range(n - dlts + 1):
                rows.append(_table_row(n, dlts, pending, b, design.target, lambda_e, lambda_d, max_pending_fraction))
    return rows


def _table_row(
    n: int,
    dlts: int,
    pending: int,
    b: rules.BoinBoundary,
    target: float,
    lambda_e: float,
    lambda_d: float,
    max_pending_fraction: float,
) -> TiteBoinRow:
    if b.eliminate_at_least is not None and dlts >= b.eliminate_at_least:
        return TiteBoinRow(n, dlts, pending, "eliminate")
    if pending == 0:
        action = (
            "escalate" if dlts <= b.escalate_at_most else "de-escalate" if dlts >= b.deescalate_at_least else "stay"
        )
        return TiteBoinRow(n, dlts, pending, action)
    if pending > max_pending_fraction * n and dlts / n < lambda_d:
        return TiteBoinRow(n, dlts, pending, "suspend")
    alpha = target / 2
    odds = (dlts + alpha) / (n - pending - dlts + 1 - alpha)
    # p_tilde <= lambda_e  <=>  STFT >= pending - (n * lambda_e - dlts) / odds
    escalate_at = pending - (n * lambda_e - dlts) / odds
    if escalate_at <= 0:
        return TiteBoinRow(n, dlts, pending, "escalate")
    if escalate_at < pending:
        return TiteBoinRow(n, dlts, pending, "depends on STFT", escalate_if_stft_at_least=escalate_at)
    if dlts / n > target:
        # p_tilde >= lambda_d  <=>  STFT <= pending - (n * lambda_d - dlts) / odds
        deescalate_at = pending - (n * lambda_d - dlts) / odds
        if deescalate_at >= pending:
            return TiteBoinRow(n, dlts, pending, "de-escalate")
        if deescalate_at >= 0:
            return TiteBoinRow(n, dlts, pending, "depends on STFT", deescalate_if_stft_at_most=deescalate_at)
    return TiteBoinRow(n, dlts, pending, "stay")
