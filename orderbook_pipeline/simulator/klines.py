"""Klines (candlesticks) of the bundled exchange: a pure function of (seed, symbol, venue, time).

The kline backfill may ask for days before the simulator started, so klines cannot be recorded
from the live market: every 1m kline is computed from hashes of (seed, symbol, minute) instead.
The price at each minute boundary is the base price times 1 + a sum of hash-seeded "value noise"
octaves (knots every 2**k minutes, linearly interpolated, amplitude ~ sqrt(2**k)), which behaves
like a bounded random walk around the symbol's base price (the book's initial mid) and can be evaluated at any minute without walking
from the start. A kline's open is the price at its start boundary and its close the price at its
end boundary, so consecutive klines chain exactly. Larger intervals aggregate the 1m klines
(open of the first, close of the last, max high, min low, summed volumes and trades), all in
integer ticks and lots, so the decimal strings aggregate exactly.

The kline that contains `now` is returned partially formed (as Binance does): its values are the
full minute's scaled by the elapsed fraction, and equal the full kline once the minute is over.
Prices are the same on every venue for a seed (as the book is); only the spelling differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from orderbook_pipeline.core.klines import INTERVALS, MINUTE_MS
from orderbook_pipeline.simulator.specs import (
    make_formatter,
    stable_int,
    symbol_spec,
    venue_decimals,
)
from orderbook_pipeline.venues import Venue

# The interval table is the capture's (core/klines.py): one place for the venue's intervals.
_DAY_MS = 1440 * MINUTE_MS

_OCTAVES = 13  # knots up to every 4096 minutes (~2.8 days): bounded drift of a few percent
_SIGMA = 0.0004  # log-price amplitude of the 1-minute octave (per-minute moves ~0.05%)
_MEAN_TRADES = 60  # trades per minute, on average


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps, which is what it wants)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _unit(key: int, salt: int, idx: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1), one per index, a pure function of (key, salt, index)."""
    base = np.uint64(stable_int(f"{key}:{salt}") & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        h = _mix(idx.astype(np.int64).view(np.uint64) ^ base)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class KlineQuery:
    interval: str
    start_ms: int | None = None
    end_ms: int | None = None
    limit: int = 500


class KlineSource:
    """Klines of one simulated symbol on one venue."""

    def __init__(self, venue: Venue, symbol: str, seed: int = 1) -> None:
        self.venue = venue
        self.spec = symbol_spec(symbol)
        self.symbol = self.spec.symbol
        self._key = stable_int(f"{seed}:{self.symbol}:klines")
        pd, qd = venue_decimals(venue, self.spec)
        self.fmt_price = make_formatter(self.spec.price_decimals, pd)
        self.fmt_qty = make_formatter(self.spec.qty_decimals, qd)
        # Quote volume is kept in tick x lot units, whose decimals are the sum of both.
        quote_units = self.spec.price_decimals + self.spec.qty_decimals
        self.fmt_quote = make_formatter(quote_units, max(quote_units, venue.text_decimals or 0))
        tick = float(Decimal(self.spec.tick_size))
        self._base_ticks = max(2, round(self.spec.base_price / tick))  # the book's initial mid
        lots_per_unit = 10**self.spec.qty_decimals
        # A trade is ~5% of a typical resting level (levels are ~2000 quote units).
        self._trade_lots = max(1.0, 0.05 * self.spec.median_level_qty * lots_per_unit)

    # ------------------------------------------------------------------ 1m model
    def _boundary_ticks(self, minutes: np.ndarray) -> np.ndarray:
        """Price in ticks at the start of each minute (ascending minutes since the epoch)."""
        x = np.zeros(len(minutes), dtype=np.float64)
        for k in range(_OCTAVES):
            scale = 1 << k
            knot, rem = np.divmod(minutes, scale)
            # Hash each knot once: coarse octaves have far fewer knots than minutes.
            lo = int(knot[0])
            values = _unit(self._key, k, np.arange(lo, int(knot[-1]) + 2, dtype=np.int64)) * 2 - 1
            v0, v1 = values[knot - lo], values[knot - lo + 1]
            x += _SIGMA * (scale**0.5) * (v0 + (v1 - v0) * (rem / scale))
        # Only + - * / and rounding: IEEE-exact, so a minute's price does not depend on whether
        # numpy computed it in a SIMD lane or a scalar tail (exp/log could, by one ulp).
        return np.maximum(1, np.rint(self._base_ticks * (1.0 + x))).astype(np.int64)

    def _minutes(self, minutes: np.ndarray, now_ms: int) -> dict[str, np.ndarray]:
        """Integer fields of the 1m klines of `minutes` (none after the minute containing now)."""
        bounds = self._boundary_ticks(np.append(minutes, minutes[-1] + 1))
        o, c = bounds[:-1], bounds[1:]
        u = [_unit(self._key, 100 + j, minutes) for j in range(6)]
        # Elapsed fraction: 1 for past minutes, partial for the minute containing now.
        frac = np.clip((now_ms - minutes * MINUTE_MS) / MINUTE_MS, 0.0, 1.0)
        c = o + np.rint((c - o) * frac).astype(np.int64)
        spread = np.maximum(1.0, o * _SIGMA * 0.5)  # typical intra-minute excursion, in ticks
        up = np.floor(2.0 * u[0] * u[0] * spread * frac).astype(np.int64)
        down = np.floor(2.0 * u[1] * u[1] * spread * frac).astype(np.int64)
        high = np.maximum(o, c) + up
        low = np.maximum(1, np.minimum(o, c) - down)
        trades = np.floor((1 + u[2] * 2 * _MEAN_TRADES) * frac).astype(np.int64)
        volume = np.floor(trades * self._trade_lots * (0.5 + u[3])).astype(np.int64)
        taker_buy = np.floor(volume * u[4]).astype(np.int64)
        # Quote volumes as volume x one price inside [low, high]: exact in tick x lot units.
        vwap = low + np.floor((high - low) * u[5]).astype(np.int64)
        return {
            "open": o,
            "high": high,
            "low": low,
            "close": c,
            "volume": volume,
            "quote": volume * vwap,
            "trades": trades,
            "taker_base": taker_buy,
            "taker_quote": taker_buy * vwap,
        }

    # ------------------------------------------------------------------ queries
    def open_times(self, query: KlineQuery, now_ms: int) -> list[int]:
        """Open times Binance would answer with: ascending, never after the kline of now."""
        length, offset = INTERVALS[query.interval]
        last = (now_ms - offset) // length * length + offset
        if query.end_ms is not None:
            last = min(last, (query.end_ms - offset) // length * length + offset)
        first_possible = offset if offset else 0  # nothing before the epoch
        if query.start_ms is not None:
            first = max(first_possible, -((offset - query.start_ms) // length) * length + offset)
            if first > last:
                return []
            return list(range(first, min(last, first + (query.limit - 1) * length) + 1, length))
        first = max(first_possible, last - (query.limit - 1) * length)
        return list(range(first, last + 1, length)) if first <= last else []

    def klines(self, query: KlineQuery, now_ms: int) -> list[list[Any]]:
        """Binance's kline rows for the query at wall-clock time now_ms."""
        if query.interval not in INTERVALS:
            raise ValueError(f"unknown interval {query.interval!r}")
        opens = self.open_times(query, now_ms)
        if not opens:
            return []
        length = INTERVALS[query.interval][0]
        per = length // MINUTE_MS
        first_min = opens[0] // MINUTE_MS
        # Whole-interval minute grid, cut after the minute containing now.
        last_min = min(opens[-1] // MINUTE_MS + per - 1, now_ms // MINUTE_MS)
        minutes = np.arange(first_min, last_min + 1, dtype=np.int64)
        f = self._minutes(minutes, now_ms)
        starts = np.arange(0, len(opens) * per, per, dtype=np.int64)
        starts = starts[starts < len(minutes)]
        ends = np.append(starts[1:], len(minutes)) - 1
        agg = {
            "open": f["open"][starts],
            "close": f["close"][ends],
            "high": np.maximum.reduceat(f["high"], starts),
            "low": np.minimum.reduceat(f["low"], starts),
        }
        for name in ("volume", "quote", "trades", "taker_base", "taker_quote"):
            agg[name] = np.add.reduceat(f[name], starts)
        cols = {k: v.tolist() for k, v in agg.items()}  # Python ints for the formatters
        fp, fq, fv = self.fmt_price, self.fmt_qty, self.fmt_quote
        return [
            [
                t,
                fp(cols["open"][i]),
                fp(cols["high"][i]),
                fp(cols["low"][i]),
                fp(cols["close"][i]),
                fq(cols["volume"][i]),
                t + length - 1,
                fv(cols["quote"][i]),
                cols["trades"][i],
                fq(cols["taker_base"][i]),
                fv(cols["taker_quote"][i]),
                "0",
            ]
            for i, t in enumerate(opens)
        ]
