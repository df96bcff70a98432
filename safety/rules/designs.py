"""Running a design by name, and both designs side by side (the CLI, the review's second opinion)."""

from __future__ import annotations

from collections.abc import Mapping

from safety.rules.boin import boin
from safety.rules.notation import (
    Outcomes,
    Recommendation,
)
from safety.rules.three_plus_three import three_plus_three

#: Canonical design names and the spellings accepted by :func:`recommend`.
DESIGNS: Mapping[str, tuple[str, ...]] = {
    "3+3": ("3+3", "three_plus_three", "three-plus-three", "threeplusthree", "3plus3"),
    "boin": ("boin",),
}


def canonical_design(design: str) -> str:
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
    name = canonical_design(design)
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
