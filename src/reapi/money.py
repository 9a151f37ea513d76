"""Money as integers of a fixed unit, so that no float ever touches a balance.

One unit is a nano-dollar (1e-9 USD). Rates are exact decimals (USD per 1M tokens); a call's cost
is computed exactly and rounded once, half up, to the unit. Task credits are 1/1000 USD, i.e.
exactly 1,000,000 units.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

UNITS_PER_USD = 10**9
UNITS_PER_CREDIT = 10**6
_ONE_UNIT = Decimal(1)


class MoneyFormatError(ValueError):
    pass


def parse_decimal(text: str | int | Decimal, *, what: str = "amount") -> Decimal:
    if isinstance(text, float):  # floats have already lost exactness
        raise MoneyFormatError(f"{what} must be a decimal string, not a float")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise MoneyFormatError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise MoneyFormatError(f"{what} {text!r} is not a finite number")
    return value


def usd_to_units(text: str | int | Decimal) -> int:
    """Exact conversion; more precision than the unit holds is an error, not a rounding."""
    scaled = parse_decimal(text, what="USD amount") * UNITS_PER_USD
    if scaled != scaled.to_integral_value():
        raise MoneyFormatError(f"{text!r} has more than 9 decimal places")
    return int(scaled)


def credits_to_units(text: str | int | Decimal) -> int:
    scaled = parse_decimal(text, what="credit amount") * UNITS_PER_CREDIT
    if scaled != scaled.to_integral_value():
        raise MoneyFormatError(f"{text!r} has more than 6 decimal places")
    return int(scaled)


def round_units(exact: Decimal) -> int:
    return int(exact.quantize(_ONE_UNIT, rounding=ROUND_HALF_UP))


def token_cost(tokens: int, usd_per_mtok: Decimal) -> Decimal:
    """Exact cost in units (not yet rounded) of ``tokens`` at a per-1M-token USD rate."""
    return Decimal(tokens) * usd_per_mtok * (UNITS_PER_USD // 1_000_000)


def format_usd(units: int) -> str:
    """Decimal USD string with at least two decimals and no trailing zeros beyond them."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_USD)
    digits = f"{frac:09d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"


def format_credits(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_CREDIT)
    digits = f"{frac:06d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"
