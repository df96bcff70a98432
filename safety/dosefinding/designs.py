"""A design and its parameters as one value, so tables, paths and simulations call the rules one way.

Pure (stdlib only, no Django). Every decision comes from :mod:`safety.rules`, whose functions mirror
the R packages ``escalation`` (3+3) and ``BOIN``; nothing here re-implements a rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from safety import rules

__all__ = ["THREE_PLUS_THREE_VARIANTS", "Design", "check_probabilities", "check_whole_number", "make_design"]

#: The 3+3 variants, as ``rules.three_plus_three`` flags:
#:
#: * ``escalation_default``: R ``escalation::get_three_plus_three(num_doses)`` (no de-escalation; may stop
#:   on 3 patients);
#: * ``allow_deescalate``: R ``get_three_plus_three(num_doses, allow_deescalate = TRUE)`` (Korn et al. 1994);
#: * ``confirm_on_six``: the variant NCT06949137 uses (never ends escalation on 3 patients; see
#:   ``rules.three_plus_three``).
THREE_PLUS_THREE_VARIANTS: dict[str, dict[str, bool]] = {
    "escalation_default": {"allow_deescalate": False, "confirm_on_six": False},
    "allow_deescalate": {"allow_deescalate": True, "confirm_on_six": False},
    "confirm_on_six": {"allow_deescalate": True, "confirm_on_six": True},
}


def check_whole_number(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Design:
    """A dose-escalation design with its parameters; build it with :func:`make_design`.

    ``name`` is ``"3+3"`` or ``"boin"``. ``variant`` is used by 3+3 only (``""`` for BOIN); ``target`` and
    ``cutoff_eli`` by BOIN only (they are kept at their defaults for 3+3 so two equal designs compare
    equal).
    """

    name: str
    num_doses: int
    variant: str = "escalation_default"
    target: float = 0.3
    cutoff_eli: float = 0.95

    @property
    def label(self) -> str:
        """A short human name, e.g. ``3+3 (confirm_on_six)`` or ``BOIN (target 0.3)``."""
        if self.name == "3+3":
            return f"3+3 ({self.variant})"
        return f"BOIN (target {self.target:g})"

    def recommend(self, outcomes: rules.Outcomes, *, strict: bool = True) -> rules.Recommendation:
        """The design's advice on ``outcomes`` (a notation string or parsed cohorts), from ``safety.rules``."""
        if self.name == "3+3":
            flags = THREE_PLUS_THREE_VARIANTS[self.variant]
            return rules.three_plus_three(outcomes, num_doses=self.num_doses, strict=strict, **flags)
        return rules.boin(outcomes, num_doses=self.num_doses, target=self.target, cutoff_eli=self.cutoff_eli)

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"design": self.name, "num_doses": self.num_doses}
        if self.name == "3+3":
            body["variant"] = self.variant
        else:
            body.update(target=self.target, cutoff_eli=self.cutoff_eli)
        return body


def make_design(
    name: str,
    *,
    num_doses: int,
    variant: str | None = None,
    target: float = 0.3,
    cutoff_eli: float = 0.95,
) -> Design:
    """Validate and build a :class:`Design`. ``name`` accepts the spellings of ``rules.DESIGNS``.

    Raises ``ValueError`` with a plain message for an unknown design or variant, a variant given to
    BOIN, a number of doses below 1, or BOIN parameters that ``BOIN::get.boundary`` itself refuses.
    """
    canonical = next(
        (key for key, aliases in rules.DESIGNS.items() if isinstance(name, str) and name.strip().lower() in aliases),
        None,
    )
    if canonical is None:
        known = ", ".join(f'"{key}"' for key in rules.DESIGNS)
        raise ValueError(f"unknown design {name!r}: choose one of {known}")
    check_whole_number(num_doses, "num_doses")
    if canonical == "3+3":
        chosen = variant or "escalation_default"
        if chosen not in THREE_PLUS_THREE_VARIANTS:
            known = ", ".join(THREE_PLUS_THREE_VARIANTS)
            raise ValueError(f"unknown 3+3 variant {chosen!r}: choose one of {known}")
        return Design(name="3+3", num_doses=num_doses, variant=chosen)
    if variant is not None:
        raise ValueError(f"BOIN has no variant (got {variant!r}); variants are for 3+3")
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
        raise ValueError(f"target must be a number, got {target!r}")
    rules.boin_boundaries(float(target))  # BOIN's own checks on the target (0.05 to 0.6)
    if isinstance(cutoff_eli, bool) or not isinstance(cutoff_eli, int | float) or not 0 < cutoff_eli < 1:
        raise ValueError(f"cutoff_eli must lie strictly between 0 and 1, got {cutoff_eli!r}")
    return Design(name="boin", num_doses=num_doses, variant="", target=float(target), cutoff_eli=float(cutoff_eli))


def check_probabilities(values: Sequence[float], name: str = "true_rates") -> tuple[float, ...]:
    """Every value a finite probability in [0, 1]; at least one value."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty list of probabilities, one per dose")
    checked = []
    for index, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name}: dose {index} has {value!r}, not a number")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: dose {index} has {value!r}; a probability lies between 0 and 1")
        checked.append(float(value))
    return tuple(checked)
