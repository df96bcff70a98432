"""Operating characteristics as data, and their plain-text rendering (command line, printable page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from safety.dosefinding.designs import Design

__all__ = ["OperatingCharacteristics", "render_operating_characteristics"]


@dataclass(frozen=True, slots=True)
class OperatingCharacteristics:
    """What a design does under ``true_rates``, averaged over simulated trials (or exactly).

    Per dose (index 0 is dose 1): ``selection`` is the probability the trial selects that dose as the MTD,
    ``mean_treated`` and ``mean_dlts`` the expected numbers of patients and DLTs there.
    ``outcomes`` gives the probability of each way a trial ends (:data:`MTD_STATUSES`): ``mtd`` (=
    ``sum(selection)``), ``not_reached`` and ``not_determined`` (3+3 only) and ``none`` (no MTD: dose 1 too
    toxic). ``prob_no_mtd`` is ``1 - sum(selection)`` (BOIN: get.oc's ``percentstop`` / 100).
    ``prob_stop_early`` is the probability the design itself stopped with no dose (3+3: 2 or more DLTs at
    dose 1; BOIN: dose 1 eliminated). ``recommended_at_stop`` (3+3 only) is R ``escalation``'s answer when
    the design stops, per dose: the dose it recommends, which may have only 3 patients or be the top dose
    nothing exceeded. ``selection_se`` is the Monte Carlo standard error of each selection probability
    (``None`` when exact).
    """

    design: Design
    true_rates: tuple[float, ...]
    method: str
    trials: int | None
    seed: int | None
    cohort_size: int
    max_cohorts: int | None
    n_earlystop: int | None
    selection: tuple[float, ...]
    mean_treated: tuple[float, ...]
    mean_dlts: tuple[float, ...]
    mean_sample_size: float
    mean_total_dlts: float
    outcomes: dict[str, float]
    prob_no_mtd: float
    prob_stop_early: float
    recommended_at_stop: tuple[float, ...] | None = None
    selection_se: tuple[float, ...] | None = None

    @property
    def prob_not_reached(self) -> float | None:
        """3+3: the probability that no dose was too toxic ("MTD not reached"); ``None`` for BOIN."""
        return self.outcomes.get("not_reached") if self.design.name == "3+3" else None

    def to_dict(self) -> dict[str, object]:
        doses = range(1, len(self.true_rates) + 1)
        per_dose = []
        for index, dose in enumerate(doses):
            row: dict[str, object] = {
                "dose": dose,
                "true_rate": self.true_rates[index],
                "selection": self.selection[index],
                "mean_treated": self.mean_treated[index],
                "mean_dlts": self.mean_dlts[index],
            }
            if self.selection_se is not None:
                row["selection_se"] = self.selection_se[index]
            if self.recommended_at_stop is not None:
                row["recommended_at_stop"] = self.recommended_at_stop[index]
            per_dose.append(row)
        body: dict[str, object] = {
            **self.design.to_dict(),
            "method": self.method,
            "trials": self.trials,
            "seed": self.seed,
            "cohort_size": self.cohort_size,
            "max_cohorts": self.max_cohorts,
            "n_earlystop": self.n_earlystop,
            "doses": per_dose,
            "mean_sample_size": self.mean_sample_size,
            "mean_total_dlts": self.mean_total_dlts,
            "outcomes": dict(self.outcomes),
            "prob_no_mtd": self.prob_no_mtd,
            "prob_stop_early": self.prob_stop_early,
        }
        if self.design.name == "3+3":
            body["prob_not_reached"] = self.prob_not_reached
        return body

    def render(self) -> str:
        return render_operating_characteristics(self)


# ---------------------------------------------------------------------------
# The design as a memoised state machine
# ---------------------------------------------------------------------------


def render_operating_characteristics(oc: OperatingCharacteristics) -> str:
    """Plain text: one column per dose, then the trial-level figures."""
    doses = len(oc.true_rates)
    how = f"{oc.trials} simulated trials, seed {oc.seed}" if oc.method == "simulation" else "exact enumeration"
    size = f"cohorts of {oc.cohort_size}"
    if oc.max_cohorts is not None:
        size += f", at most {oc.max_cohorts} cohorts"
    if oc.n_earlystop is not None:
        size += f", n_earlystop {oc.n_earlystop}"
    lines = [f"{oc.design.label}: {how}; {size}", ""]
    label_width = 26

    def line(label: str, values: Sequence[float], fmt: str) -> str:
        return label.ljust(label_width) + "".join(format(v, fmt).rjust(9) for v in values)

    lines.append("dose".ljust(label_width) + "".join(str(d).rjust(9) for d in range(1, doses + 1)))
    lines.append(line("true DLT rate", oc.true_rates, ".2f"))
    lines.append(line("selected as MTD (%)", [100 * s for s in oc.selection], ".1f"))
    if oc.recommended_at_stop is not None:
        lines.append(line("R escalation's answer (%)", [100 * s for s in oc.recommended_at_stop], ".1f"))
    lines.append(line("mean number treated", oc.mean_treated, ".2f"))
    lines.append(line("mean number of DLTs", oc.mean_dlts, ".2f"))
    lines.append("")
    lines.append(f"no MTD selected: {100 * oc.prob_no_mtd:.1f}%")
    if oc.design.name == "3+3":
        lines.append(f"  MTD not reached (no dose too toxic): {100 * oc.outcomes['not_reached']:.1f}%")
        lines.append(
            f"  MTD not determined (dose below a toxic dose not confirmed on 6): "
            f"{100 * oc.outcomes['not_determined']:.1f}%"
        )
        lines.append(f"  no MTD (dose 1 too toxic): {100 * oc.outcomes['none']:.1f}%")
    lines.append(f"stopped early with no dose: {100 * oc.prob_stop_early:.1f}%")
    lines.append(f"mean sample size: {oc.mean_sample_size:.2f}; mean number of DLTs: {oc.mean_total_dlts:.2f}")
    return "\n".join(lines) + "\n"
