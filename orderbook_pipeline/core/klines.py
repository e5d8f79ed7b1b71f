"""Klines (candlesticks) of GET /api/v3/klines and /fapi/v1/klines: intervals, hour windows,
request planning and row validation. Pure: no I/O, no clock.

A kline belongs to the hourly partition that contains its open time. Intervals of an hour or
less (1m, 3m, 5m, 15m, 30m, 1h) divide the hour, so every hour holds 60/n of them; longer ones
(2h … 1d, 1w) live in the one hour their open time falls in (hour 00 for 1d, Monday 00 for 1w)
and the other hours expect none. 1s (spot only, 3,600 an hour), 3d (alignment undocumented) and
1M (months differ in length) are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orderbook_pipeline.venues import Venue

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
_DAY_MS = 24 * HOUR_MS

# Interval -> (length ms, alignment offset ms). Weekly klines open on Mondays 00:00 UTC, and
# 1970-01-01 was a Thursday: Mondays are 4 days after multiples of a week.
INTERVALS: dict[str, tuple[int, int]] = {
    "1m": (MINUTE_MS, 0),
    "3m": (3 * MINUTE_MS, 0),
    "5m": (5 * MINUTE_MS, 0),
    "15m": (15 * MINUTE_MS, 0),
    "30m": (30 * MINUTE_MS, 0),
    "1h": (HOUR_MS, 0),
    "2h": (2 * HOUR_MS, 0),
    "4h": (4 * HOUR_MS, 0),
    "6h": (6 * HOUR_MS, 0),
    "8h": (8 * HOUR_MS, 0),
    "12h": (12 * HOUR_MS, 0),
    "1d": (_DAY_MS, 0),
    "1w": (7 * _DAY_MS, 4 * _DAY_MS),
}

# Binance's decimal strings: digits, optionally a point and digits. No sign, no exponent.
_DECIMAL = re.compile(r"\d+(\.\d+)?")

# (record field, row index) of the eight decimal columns, in the row's order.
_DECIMAL_FIELDS = (
    ("open", 1),
    ("high", 2),
    ("low", 3),
    ("close", 4),
    ("volume", 5),
    ("quote_volume", 7),
    ("taker_buy_volume", 9),
    ("taker_buy_quote_volume", 10),
)


class BadKline(ValueError):
    """A kline row that is not what Binance documents: the message says which and why."""


def interval_ms(interval: str) -> int:
    return _interval(interval)[0]


def _interval(interval: str) -> tuple[int, int]:
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(
            f"unsupported kline interval {interval!r}; expected one of {list(INTERVALS)}"
        ) from None


def open_times(interval: str, start_ms: int, end_ms: int) -> list[int]:
    """Open times of `interval` klines in [start_ms, end_ms), ascending."""
    length, offset = _interval(interval)
    first = start_ms + (offset - start_ms) % length  # first aligned time >= start_ms
    return list(range(first, end_ms, length))


def expected_in_hour(interval: str, hour_start_ms: int) -> list[int]:
    """Open times a complete hourly partition holds (60 for 1m; 0 or 1 above an hour)."""
    if hour_start_ms % HOUR_MS:
        raise ValueError(f"{hour_start_ms} is not the start of an hour")
    return open_times(interval, hour_start_ms, hour_start_ms + HOUR_MS)


@dataclass(frozen=True)
class KlineRequest:
    """One GET: startTime/endTime are inclusive bounds on open times, as Binance reads them."""

    interval: str
    start_ms: int
    end_ms: int
    limit: int
    weight: int

    def params(self, symbol: str) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "interval": self.interval,
            "startTime": self.start_ms,
            "endTime": self.end_ms,
            "limit": self.limit,
        }


def cheapest_chunk(venue: Venue) -> int:
    """The `limit` with the least weight per kline (ties: the larger, fewer requests).

    Spot: 1000 at weight 2. USD-M: 499 at weight 2 beats 99 at 1, 1000 at 5 and 1500 at 10.
    """
    candidates = [m for m, _ in venue.klines_weight_tiers if m <= venue.klines_max_limit]
    return min(candidates, key=lambda m: (venue.klines_weight(m) / m, -m))


def plan_requests(venue: Venue, interval: str, start_ms: int, end_ms: int) -> list[KlineRequest]:
    """Fewest-weight requests covering the open times in [start_ms, end_ms).

    Each request asks for exactly the open times it covers (limit = their count), so a one-hour
    partition costs one request per interval at the smallest weight tier.
    """
    times = open_times(interval, start_ms, end_ms)
    chunk = cheapest_chunk(venue)
    out = []
    for i in range(0, len(times), chunk):
        part: Sequence[int] = times[i : i + chunk]
        out.append(
            KlineRequest(interval, part[0], part[-1], len(part), venue.klines_weight(len(part)))
        )
    return out


def _decimal(row: Sequence[Any], idx: int, name: str) -> tuple[str, Decimal]:
    text = row[idx]
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise BadKline(f"{name} is not a decimal string: {text!r}")
    value = Decimal(text)
    if not math.isfinite(float(value)):  # 400 digits parse, but not into a double
        raise BadKline(f"{name} does not fit a double: {text[:40]!r}")
    return text, value


def _int(row: Sequence[Any], idx: int, name: str) -> int:
    value = row[idx]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadKline(f"{name} is not an integer: {value!r}")
    return value


def parse_kline(
    row: Any,
    *,
    venue: str,
    symbol: str,
    interval: str,
    fetched_us: int,
    burst_id: str,
) -> dict[str, Any]:
    """A klines lane record (lanes/klines.py) of one row, or BadKline.

    Checks what a consumer relies on: types, decimal strings that fit a double, an open time
    aligned to the interval and a close time exactly one interval later (minus 1 ms), and
    low <= open, close <= high (compared exactly, as decimals), taker volumes within volumes.
    """
    if not isinstance(row, list | tuple) or len(row) < 11:
        raise BadKline(f"not a kline row of 11+ fields: {str(row)[:200]}")
    length, offset = _interval(interval)
    open_ms = _int(row, 0, "open time")
    close_ms = _int(row, 6, "close time")
    trades = _int(row, 8, "number of trades")
    if (open_ms - offset) % length:
        raise BadKline(f"open time {open_ms} is not aligned to {interval}")
    if close_ms != open_ms + length - 1:
        raise BadKline(f"close time {close_ms} is not open time {open_ms} + {interval} - 1 ms")
    if trades < 0:
        raise BadKline(f"negative number of trades: {trades}")
    strings: dict[str, str] = {}
    values: dict[str, Decimal] = {}
    for name, idx in _DECIMAL_FIELDS:
        strings[name], values[name] = _decimal(row, idx, name)
    ends = (values["open"], values["close"])
    if not values["low"] <= min(ends) or not max(ends) <= values["high"]:
        raise BadKline(f"open/close outside [low, high] at {open_ms}: {row[1:5]}")
    if values["taker_buy_volume"] > values["volume"]:
        raise BadKline(f"taker buy volume above volume at {open_ms}")
    if values["taker_buy_quote_volume"] > values["quote_volume"]:
        raise BadKline(f"taker buy quote volume above quote volume at {open_ms}")
    record: dict[str, Any] = {
        "venue": venue,
        "symbol": symbol,
        "interval": interval,
        "open_ts": open_ms * 1000,
        "close_ts": close_ms * 1000,
    }
    for name, _ in _DECIMAL_FIELDS:
        record[name] = float(strings[name])
    record["trades"] = trades
    for name, _ in _DECIMAL_FIELDS:
        record[f"{name}_str"] = strings[name]
    record["fetched_ts"] = fetched_us
    record["burst_id"] = burst_id
    return record


# Fields that carry what the exchange said, as opposed to when and by whom it was fetched.
MARKET_FIELDS = (
    "venue",
    "symbol",
    "interval",
    "open_ts",
    "close_ts",
    "trades",
    *(f"{name}_str" for name, _ in _DECIMAL_FIELDS),
)


def same_market_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[f] == b[f] for f in MARKET_FIELDS)


def merge_klines(
    existing: Sequence[dict[str, Any]], fetched: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One record per open time, ascending: fetched rows replace stored ones that differ.

    A stored row the exchange confirms unchanged keeps its fetched_ts and burst_id (when it was
    first seen), so re-running a complete hour reproduces its file byte for byte. A stored row
    the exchange did not return this time is kept: closed klines do not disappear, and a
    short answer must not erase what an earlier run stored.
    """
    by_open: dict[int, dict[str, Any]] = {r["open_ts"]: r for r in existing}
    for rec in fetched:
        old = by_open.get(rec["open_ts"])
        if old is None or not same_market_data(old, rec):
            by_open[rec["open_ts"]] = rec
    return [by_open[t] for t in sorted(by_open)]
