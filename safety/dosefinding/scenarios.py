"""Preset scenarios of true DLT probability per dose, for the operating-characteristics page.

Pure (stdlib only). The presets are the usual shapes of a simulation study (BOIN's and ``escalation``'s
vignettes run the same kinds): every dose safe, the MTD at each dose in turn (that dose at the target, the
doses around it one step away), and every dose too toxic. A step is ``STEP`` in probability; values are
clipped to [0.01, 0.95] and rounded to two decimals, so a preset reads as a statistician would type it.
"""

from __future__ import annotations

from safety.dosefinding.designs import check_whole_number

__all__ = ["STEP", "preset_scenarios"]

STEP = 0.15


def _clip(value: float) -> float:
    return round(min(max(value, 0.01), 0.95), 2)


def preset_scenarios(num_doses: int, target: float) -> dict[str, tuple[float, ...]]:
    """Named scenarios for ``num_doses`` doses around ``target`` (0 < target < 1), in display order.

    >>> preset_scenarios(3, 0.3)["MTD at dose 2"]
    (0.15, 0.3, 0.45)
    """
    check_whole_number(num_doses, "num_doses")
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise ValueError(f"target must lie strictly between 0 and 1, got {target!r}")
    presets: dict[str, tuple[float, ...]] = {
        "every dose safe": tuple(_clip(target / 3 * (d + 1) / num_doses) for d in range(num_doses)),
    }
    for mtd in range(1, num_doses + 1):
        presets[f"MTD at dose {mtd}"] = tuple(_clip(target + STEP * (d - mtd)) for d in range(1, num_doses + 1))
    presets["dose 1 too toxic"] = tuple(_clip(target + STEP * (d + 2)) for d in range(num_doses))
    return presets
