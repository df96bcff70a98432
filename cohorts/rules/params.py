"""Reading a rule's params from protocol data, and collecting the parts of one criterion's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cohorts.rules.engine import (
    EligibilityConfigError,
    Outcome,
    Verdict,
)
from cohorts.rules.support import (
    sentence,
    to_decimal,
)


def param(params: Mapping[str, Any], name: str) -> Any:
    try:
        return params[name]
    except KeyError:
        raise EligibilityConfigError(f"missing parameter {name!r}") from None


def num_param(params: Mapping[str, Any], name: str) -> Decimal:
    raw = param(params, name)
    try:
        number = to_decimal(raw, name)
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise EligibilityConfigError(f"parameter {name!r} must be a number, got {raw!r}")
    return number


def whole_param(params: Mapping[str, Any], name: str) -> int:
    raw = param(params, name)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise EligibilityConfigError(f"parameter {name!r} must be a whole non-negative number, got {raw!r}")
    return raw


def bool_param(params: Mapping[str, Any], name: str, default: bool | None = None) -> bool:
    raw = params.get(name, default) if default is not None else param(params, name)
    if not isinstance(raw, bool):
        raise EligibilityConfigError(f"parameter {name!r} must be true or false, got {raw!r}")
    return raw


def str_param(params: Mapping[str, Any], name: str, default: str | None = None) -> str:
    raw = params.get(name, default) if default is not None else param(params, name)
    if not isinstance(raw, str) or not raw.strip():
        raise EligibilityConfigError(f"parameter {name!r} must be a non-empty text, got {raw!r}")
    return raw.strip()


def question_param(params: Mapping[str, Any]) -> str:
    """Optional ``question``: what the investigator confirms (defaults to the criterion's text)."""
    question = params.get("question", "")
    if not isinstance(question, str):
        raise EligibilityConfigError(f"parameter 'question' must be text, got {question!r}")
    return question.strip()


class Checks:
    """Collects the parts of one criterion: breaches, missing data, passes."""

    def __init__(self) -> None:
        self.breaches: list[str] = []
        self.missing: list[str] = []
        self.passes: list[str] = []

    def breach(self, message: str) -> None:
        self.breaches.append(message)

    def miss(self, message: str) -> None:
        self.missing.append(message)

    def passed(self, message: str) -> None:
        self.passes.append(message)

    def outcome(self, *, needs_judgment: bool = False, question: str = "") -> Outcome:
        if self.breaches:
            return Outcome(Verdict.NOT_MET, sentence(self.breaches + self.missing), needs_judgment, question)
        if self.missing:
            return Outcome(Verdict.MISSING_DATA, sentence(self.missing), needs_judgment, question)
        return Outcome(Verdict.MET, sentence(self.passes), needs_judgment, question)
