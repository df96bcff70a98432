"""Dates, numbers and words the rules share (pure: no Django import)."""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def to_decimal(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        number = Decimal(str(value))  # the shortest repr: 4.5 -> Decimal("4.5"), not 4.5000000001…
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    else:
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to the end of a shorter month."""
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise ValueError(f"months must be a non-negative int, got {months!r}")
    year, month_index = divmod(day.year * 12 + day.month - 1 - months, 12)
    month = month_index + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def within_months_before(event: dt.date, screening: dt.date, months: int) -> bool:
    """Inside the window: on or after the day exactly ``months`` before screening (or later)."""
    return event >= months_before(screening, months)


def age_in_years(date_of_birth: dt.date, on: dt.date) -> int:
    """Completed years on ``on``; the birthday itself counts."""
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))


def bmi(weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Exact-as-Decimal BMI in kg/m² (not rounded)."""
    metres = height_cm / 100
    return weight_kg / (metres * metres)


def fmt(value: Decimal | int) -> str:
    """Human number: thousands separators, the recorded decimals (1,200; 4.5; -3.0)."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == value.to_integral_value() and int(value.as_tuple().exponent) >= 0:
        return f"{int(value):,}"
    return f"{value:,f}"


def one_decimal(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def capitalise(text: str) -> str:
    """Upper-case the first letter, leaving abbreviations such as "eGFR" alone."""
    if text[1:2].isupper():
        return text
    return text[:1].upper() + text[1:]


def join_parts(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def sentence(parts: Iterable[str]) -> str:
    return capitalise(join_parts(*parts))


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
