"""Exact decimal prices and quantities as scaled integers.

Binance sends prices and quantities as decimal strings. They are kept as integers scaled by
10**decimals (decimals taken from exchangeInfo's tickSize / stepSize), so the book never suffers
float rounding that could straddle sides; doubles appear only when a record is written.
"""

from __future__ import annotations


class BadNumber(ValueError):
    """A price or quantity that is not a non-negative decimal string of the expected precision."""


def decimals_of(step: str) -> int:
    """Decimal places a step such as "0.01000000" needs (2); "1.00000000" and "10" need 0."""
    if not isinstance(step, str) or not step:
        raise BadNumber(f"step must be a decimal string, got {step!r}")
    _, _, frac = step.partition(".")
    return len(frac.rstrip("0"))


def parse_scaled(text: object, decimals: int) -> int:
    """Exact integer value of a decimal string scaled by 10**decimals.

    Raises BadNumber for non-strings, signs, exponents, NaN/inf, empty parts or more significant
    decimals than the scale allows (the exchange promised its tick/step).
    """
    if type(text) is not str:
        raise BadNumber(f"expected a decimal string, got {type(text).__name__} {text!r}")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or not whole.isascii():
        raise BadNumber(f"not a non-negative decimal: {text!r}")
    if len(frac) > decimals:
        extra = frac[decimals:]
        if extra.strip("0"):
            raise BadNumber(f"{text!r} has more than {decimals} significant decimals")
        frac = frac[:decimals]
    return int(whole + frac.ljust(decimals, "0"))


def format_scaled(value: int, decimals: int) -> str:
    """Inverse of parse_scaled, for messages and tests: 6500001, 2 -> "65000.01"."""
    if decimals == 0:
        return str(value)
    digits = str(value).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"
