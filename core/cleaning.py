"""Cleaning what people and clients type before a service acts on it.

Each function returns the value in its exact type or raises ``InvalidInput`` (400) naming the field,
so that bad input never reaches the database: not text, NUL bytes, too long, not a number, too
precise, out of range, a time without its zone, a time in the future.
"""

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from core.errors import ErrorCode, InvalidInput

CLOCK_SKEW = timedelta(minutes=2)  # a bedside device's clock may run slightly ahead of the server's
MAX_CELLS = 2**63 - 1  # PositiveBigIntegerField: a larger count is refused, never an overflow
DROP_FACTOR_RANGE = (1, 100)  # drops/mL: macro sets 10–20, micro sets 60


def clean_text(value, *, field: str, label: str, max_length: int, required: bool = False, code: str = "invalid") -> str:
    if not isinstance(value, str):
        raise InvalidInput(code, f"{label} must be text.", {field: ["Not text."]})
    if "\x00" in value:
        raise InvalidInput(code, f"{label} contains a NUL character.", {field: ["Contains a NUL character."]})
    value = value.strip()
    if required and not value:
        raise InvalidInput(code, f"Give the {label.lower()}.", {field: ["Required."]})
    if len(value) > max_length:
        raise InvalidInput(code, f"{label} is longer than {max_length} characters.", {field: ["Too long."]})
    return value


def clean_decimal(value, *, field: str, label: str, unit: str, max_digits: int, places: int, code: str) -> Decimal:
    """A finite Decimal with at most ``places`` decimals that fits ``max_digits``; anything else is refused."""
    bad = InvalidInput(code, f"{label} must be a number in {unit}, e.g. 22.", {field: ["Not a number."]})
    if isinstance(value, bool) or value is None:
        raise bad
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise bad
        value = value.strip()
    if not isinstance(value, str | int | Decimal):
        raise bad
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise bad from None
    if not number.is_finite():
        raise bad
    if abs(number) >= Decimal(10) ** (max_digits - places):
        raise InvalidInput(code, f"{label} {value} {unit} is not a plausible value.", {field: ["Too large."]})
    rounded = number.quantize(Decimal(1).scaleb(-places))
    if rounded != number:
        raise InvalidInput(code, f"{label} has more than {places} decimal place(s).", {field: ["Too precise."]})
    return rounded


def plain_number(number: Decimal) -> str:
    """20.00 → "20", 19.90 → "19.9": a number as a person writes it."""
    return format(number.normalize(), "f")


def clean_drip_rate(value) -> Decimal:
    rate = clean_decimal(
        value,
        field="drops_per_minute",
        label="The drip rate",
        unit="drops/min",
        max_digits=6,
        places=2,
        code=ErrorCode.INVALID_RATE,
    )
    if rate <= 0:
        raise InvalidInput(
            ErrorCode.RATE_NOT_POSITIVE,
            f"The drip rate must be a positive number of drops/min, not {rate}.",
            {"drops_per_minute": ["Must be more than 0."]},
        )
    return rate


def clean_volume(value, *, field: str = "volume_ml") -> Decimal:
    volume = clean_decimal(
        value, field=field, label="The volume", unit="mL", max_digits=7, places=1, code=ErrorCode.INVALID_VOLUME
    )
    if volume < 0:
        raise InvalidInput(
            ErrorCode.VOLUME_NEGATIVE, f"The volume cannot be negative ({volume} mL).", {field: ["Negative."]}
        )
    return volume


def clean_cell_count(value, *, field: str, allow_zero: bool = False) -> int:
    """An exact cell count: an int (or a string of ASCII digits); floats are refused (they are not exact)."""
    bad = InvalidInput(
        ErrorCode.INVALID_CELLS, "The cell count must be a whole number, e.g. 60000000.", {field: ["Invalid."]}
    )
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,25}", value.strip()):
            raise bad
        value = int(value.strip())
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int):
        raise bad
    if value < (0 if allow_zero else 1) or value > MAX_CELLS:
        raise InvalidInput(
            ErrorCode.INVALID_CELLS,
            f"The cell count must be between {0 if allow_zero else 1} and {MAX_CELLS}.",
            {field: ["Out of range."]},
        )
    return value


def clean_moment(value, *, field: str, label: str, allow_future: bool = False) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            ErrorCode.INVALID, f"{label} must be a date and time with its time zone.", {field: ["Invalid."]}
        )
    if not allow_future and value > timezone.now() + CLOCK_SKEW:
        raise InvalidInput(ErrorCode.DATE_IN_FUTURE, f"{label} cannot be in the future.", {field: ["In the future."]})
    return value


def clean_drop_factor(value) -> int:
    low, high = DROP_FACTOR_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            ErrorCode.INVALID_DROP_FACTOR,
            f"The giving set's drop factor must be a whole number of drops/mL from {low} to "
            f"{high} (e.g. 20, or 60 for a micro-drip set).",
            {"drop_factor": ["Invalid."]},
        )
    return value


def clean_flag(value, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(ErrorCode.INVALID, f"{field} must be true or false.", {field: ["Not true or false."]})
    return value
