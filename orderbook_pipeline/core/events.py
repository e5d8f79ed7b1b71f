"""Depth events and snapshots decoded from Binance JSON into exact, validated values.

Validation happens once, here: anything that is not a well-formed event (wrong types, NaN or
negative quantities, prices off the tick scale) raises BadEvent with a reason the capture counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orderbook_pipeline.core.book import Level
from orderbook_pipeline.core.decimals import BadNumber, parse_scaled

RawLevels = list[list[str]]


class BadEvent(ValueError):
    """A frame or payload that cannot be used; `reason` is a short label for metrics."""

    def __init__(self, reason: str, detail: str, symbol: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.symbol = symbol


@dataclass(frozen=True, slots=True)
class Scales:
    """Decimal places of a symbol's prices and quantities (from tickSize / stepSize)."""

    price_decimals: int
    qty_decimals: int

    @property
    def price_divisor(self) -> int:
        return int(10**self.price_decimals)

    @property
    def qty_divisor(self) -> int:
        return int(10**self.qty_decimals)


@dataclass(slots=True)
class DiffEvent:
    symbol: str
    event_ms: int  # E
    transaction_ms: int | None  # T (futures)
    first_id: int  # U
    last_id: int  # u
    prev_id: int | None  # pu (futures)
    bids: list[Level]
    asks: list[Level]
    raw_bids: RawLevels  # exact strings as sent, for the diff lane
    raw_asks: RawLevels
    ingest_us: int


def _int_field(data: dict[str, Any], key: str, symbol: str | None, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise BadEvent(
            "wrong_types", f"field {key!r} must be a non-negative integer, got {value!r}", symbol
        )
    return value


def parse_levels(raw: Any, scales: Scales, symbol: str | None) -> list[Level]:
    if type(raw) is not list:
        raise BadEvent("wrong_types", f"levels must be a list, got {type(raw).__name__}", symbol)
    pd, qd = scales.price_decimals, scales.qty_decimals
    out: list[Level] = []
    try:
        for level in raw:
            if type(level) is not list or len(level) < 2:
                raise BadEvent("wrong_types", f"level must be [price, qty], got {level!r}", symbol)
            out.append((parse_scaled(level[0], pd), parse_scaled(level[1], qd)))
    except BadNumber as exc:  # NaN, negative, exponent, off-scale: the event cannot be applied
        raise BadEvent("bad_number", str(exc), symbol) from None
    return out


def parse_depth_event(
    data: dict[str, Any], scales_by_symbol: dict[str, Scales], ingest_us: int, with_prev_id: bool
) -> DiffEvent:
    """Validate a depthUpdate payload for a subscribed symbol."""
    symbol = data.get("s")
    if type(symbol) is not str:
        raise BadEvent("wrong_types", f"symbol must be a string, got {symbol!r}")
    scales = scales_by_symbol.get(symbol)
    if scales is None:
        raise BadEvent("unknown_symbol", f"event for unsubscribed symbol {symbol!r}", symbol)
    first_id = _int_field(data, "U", symbol)
    last_id = _int_field(data, "u", symbol)
    if last_id < first_id:
        raise BadEvent("wrong_types", f"u={last_id} < U={first_id}", symbol)
    prev_id = _int_field(data, "pu", symbol, optional=not with_prev_id) if with_prev_id else None
    raw_bids, raw_asks = data.get("b"), data.get("a")
    bids = parse_levels(raw_bids, scales, symbol)
    asks = parse_levels(raw_asks, scales, symbol)
    return DiffEvent(
        symbol=symbol,
        event_ms=_int_field(data, "E", symbol),
        transaction_ms=_int_field(data, "T", symbol, optional=True),
        first_id=first_id,
        last_id=last_id,
        prev_id=prev_id,
        bids=bids,
        asks=asks,
        raw_bids=raw_bids,  # type: ignore[arg-type]  # validated by parse_levels
        raw_asks=raw_asks,  # type: ignore[arg-type]
        ingest_us=ingest_us,
    )


@dataclass(slots=True)
class Snapshot:
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    raw_bids: RawLevels
    raw_asks: RawLevels


def parse_snapshot(data: Any, scales: Scales, symbol: str) -> Snapshot:
    if type(data) is not dict:
        raise BadEvent(
            "wrong_types", f"snapshot must be an object, got {type(data).__name__}", symbol
        )
    last_update_id = _int_field(data, "lastUpdateId", symbol)
    raw_bids, raw_asks = data.get("bids"), data.get("asks")
    return Snapshot(
        last_update_id=last_update_id,
        bids=parse_levels(raw_bids, scales, symbol),
        asks=parse_levels(raw_asks, scales, symbol),
        raw_bids=raw_bids,  # type: ignore[arg-type]
        raw_asks=raw_asks,  # type: ignore[arg-type]
    )
