"""Exchange facts of simulated symbols (tick, step, base price) and the venues' number spelling.

Everything here is derived deterministically from the symbol's name, so the market model, the
klines and the REST answers agree without sharing state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orderbook_pipeline.venues import Venue

_KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    step_size: str
    price_decimals: int
    qty_decimals: int
    base_price: float
    # Typical resting quantity of one level, in base units (lognormal median).
    median_level_qty: float


def stable_int(text: str) -> int:
    # Python's hash() is salted per process; the market must be reproducible across runs.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _decimals(size: str) -> int:
    exponent = Decimal(size).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _split_assets(symbol: str) -> tuple[str, str]:
    for quote in _KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3] or symbol, symbol[-3:]


def symbol_spec(symbol: str) -> SymbolSpec:
    """Exchange facts of a simulated symbol, derived deterministically from its name."""
    symbol = symbol.upper()
    if symbol == "BTCUSDT":
        price, tick, step = 65000.0, "0.01", "0.00001"
    elif symbol == "ETHUSDT":
        price, tick, step = 3000.0, "0.01", "0.0001"
    else:
        h = stable_int(symbol)
        price = 1.0 + (h % 999_000) / 1000.0
        tick = "0.0001" if (h >> 32) & 1 else "0.001"
        step = "0.01"
    base, quote = _split_assets(symbol)
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        tick_size=tick,
        step_size=step,
        price_decimals=_decimals(tick),
        qty_decimals=_decimals(step),
        base_price=price,
        median_level_qty=2000.0 / price,  # ~2000 quote units a level
    )


def make_formatter(unit_decimals: int, out_decimals: int) -> Any:
    """Integer units of 10**-unit_decimals -> fixed-point string with out_decimals."""
    scale = 10**unit_decimals
    pad = "0" * (out_decimals - unit_decimals)
    if unit_decimals == 0:
        return (lambda v: f"{v}.{pad}") if pad else str
    return lambda v: f"{v // scale}.{v % scale:0{unit_decimals}d}{pad}"


def venue_decimals(venue: Venue, spec: SymbolSpec) -> tuple[int, int]:
    """(price decimals, qty decimals) the venue prints for this symbol."""
    if venue.text_decimals is None:
        return spec.price_decimals, spec.qty_decimals
    return max(venue.text_decimals, spec.price_decimals), max(
        venue.text_decimals, spec.qty_decimals
    )
