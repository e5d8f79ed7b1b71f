"""Decimal places of a symbol's tick and step sizes (exchangeInfo's tickSize / stepSize)."""

from __future__ import annotations


class BadNumber(ValueError):
    """A step size that is not a decimal string."""


def decimals_of(step: str) -> int:
    """Decimal places a step such as "0.01000000" needs (2); "1.00000000" and "10" need 0."""
    if not isinstance(step, str) or not step:
        raise BadNumber(f"step must be a decimal string, got {step!r}")
    _, _, frac = step.partition(".")
    return len(frac.rstrip("0"))
