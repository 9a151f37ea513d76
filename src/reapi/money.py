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
# Amounts of 1e18 or more are far beyond any real one. Refusing them first keeps the scaling
# exact (18 digits + 9 decimals fit the context's 28) and from overflowing the context
# ("1e999999999" would) or building a million-digit integer.
_MAX_DIGITS = 18


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
    return _to_units(text, UNITS_PER_USD, what="USD amount", places=9)


def credits_to_units(text: str | int | Decimal) -> int:
    return _to_units(text, UNITS_PER_CREDIT, what="credit amount", places=6)


def _to_units(text: str | int | Decimal, per_unit: int, *, what: str, places: int) -> int:
    value = parse_decimal(text, what=what)
    if value.adjusted() >= _MAX_DIGITS:
        raise MoneyFormatError(f"{what} {text!r} is out of range")
    scaled = value * per_unit
    if scaled != scaled.to_integral_value():
        raise MoneyFormatError(f"{text!r} has more than {places} decimal places")
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
