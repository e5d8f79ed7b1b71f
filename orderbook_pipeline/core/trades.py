"""Trade and aggTrade payloads as records, and the continuity of their ids (see lanes.py)."""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.events import BadEvent
from orderbook_pipeline.core.lanes import (
    bool_field,
    check_event_type,
    check_symbol,
    id_field,
    ms_as_us,
    opt_bool_field,
    payload,
    price,
    quantity,
    str_field,
)


def trade_record(
    data: Any, venue: str, symbol: str, ingest_us: int, burst_id: str
) -> dict[str, Any]:
    """TradeRecord of a `<sym>@trade` payload {"e":"trade","E","s","t","p","q","T","m","M"}."""
    d = payload(data, "trade", symbol)
    check_event_type(d, "trade", "trade", symbol)
    check_symbol(d, "trade", symbol)
    px_str, qty_str = str_field(d, "p", "trade", symbol), str_field(d, "q", "trade", symbol)
    return {
        "venue": venue,
        "symbol": symbol,
        "event_ts": ms_as_us(d, "E", "trade", symbol),
        "trade_ts": ms_as_us(d, "T", "trade", symbol),
        "ingest_ts": ingest_us,
        "trade_id": id_field(d, "t", "trade", symbol),
        "px": price(px_str, "trade", symbol),
        "qty": quantity(qty_str, "trade", symbol, positive=True),
        "px_str": px_str,
        "qty_str": qty_str,
        "is_buyer_maker": bool_field(d, "m", "trade", symbol),
        "is_best_match": opt_bool_field(d, "M", "trade", symbol),
        "missing_before": 0,
        "burst_id": burst_id,
    }


def agg_trade_record(
    data: Any, venue: str, symbol: str, ingest_us: int, burst_id: str
) -> dict[str, Any]:
    """AggTradeRecord of a `<sym>@aggTrade` payload
    {"e":"aggTrade","E","s","a","p","q","f","l","T","m"[,"M"]} (USD-M sends no "M")."""
    d = payload(data, "aggTrade", symbol)
    check_event_type(d, "aggTrade", "aggTrade", symbol)
    check_symbol(d, "aggTrade", symbol)
    px_str, qty_str = str_field(d, "p", "aggTrade", symbol), str_field(d, "q", "aggTrade", symbol)
    first_id, last_id = id_field(d, "f", "aggTrade", symbol), id_field(d, "l", "aggTrade", symbol)
    if last_id < first_id:
        raise BadEvent("wrong_types", f"aggTrade l={last_id} < f={first_id}", symbol)
    return {
        "venue": venue,
        "symbol": symbol,
        "event_ts": ms_as_us(d, "E", "aggTrade", symbol),
        "trade_ts": ms_as_us(d, "T", "aggTrade", symbol),
        "ingest_ts": ingest_us,
        "agg_id": id_field(d, "a", "aggTrade", symbol),
        "first_trade_id": first_id,
        "last_trade_id": last_id,
        "px": price(px_str, "aggTrade", symbol),
        "qty": quantity(qty_str, "aggTrade", symbol, positive=True),
        "px_str": px_str,
        "qty_str": qty_str,
        "is_buyer_maker": bool_field(d, "m", "aggTrade", symbol),
        "is_best_match": opt_bool_field(d, "M", "aggTrade", symbol),
        "missing_before": 0,
        "burst_id": burst_id,
    }


class IdContinuity:
    """Consecutive ids of one stream in one burst.

    observe(first_id, last_id) of each item in arrival order returns how many ids are missing
    between the newest item seen so far and this one (0 when it continues, and for the first
    item, which has nothing to continue), or None when the item is not newer than the newest
    seen: a repeat (reconnect overlap) or an older item, which the caller drops. An older item
    that was never seen (a reorder) is dropped too: the hole it fell into was already counted
    by the item that jumped ahead. An item overlapping the newest seen but reaching past it
    counts as continuing (0). Trades: first = last = t.
    """

    __slots__ = ("dropped", "last_id", "missing")

    def __init__(self) -> None:
        self.last_id: int | None = None  # newest id seen
        self.missing = 0  # ids missing, summed over the burst
        self.dropped = 0  # items answered None

    def observe(self, first_id: int, last_id: int) -> int | None:
        prev = self.last_id
        if prev is None:
            self.last_id = last_id
            return 0
        if last_id <= prev:
            self.dropped += 1
            return None
        self.last_id = last_id
        gap = first_id - prev - 1
        if gap <= 0:
            return 0
        self.missing += gap
        return gap


class AggTradeContinuity:
    """Continuity of an aggTrade stream: the aggregate ids `a` and the trade ids `f`..`l`.

    observe(a, f, l) returns (aggregate ids missing before this one, trade ids missing before
    its `f`), or None for a repeat or older aggregate (IdContinuity on `a`). The record's
    `missing_before` is the first number, as the schema says: aggregate ids are consecutive
    on every venue, while USD-M does not aggregate insurance-fund and ADL trades, so its trade
    ids can skip without anything being lost. The second number (f != previous l + 1) is the
    cross-check: it also counts the trades of any missing aggregates. Totals: `aggs.missing`,
    `missing_trades`.
    """

    __slots__ = ("aggs", "last_trade_id", "missing_trades")

    def __init__(self) -> None:
        self.aggs = IdContinuity()
        self.last_trade_id: int | None = None
        self.missing_trades = 0

    def observe(
        self, agg_id: int, first_trade_id: int, last_trade_id: int
    ) -> tuple[int, int] | None:
        missing_aggs = self.aggs.observe(agg_id, agg_id)
        if missing_aggs is None:
            return None
        prev = self.last_trade_id
        self.last_trade_id = last_trade_id if prev is None else max(prev, last_trade_id)
        missing_trades = 0 if prev is None else max(first_trade_id - prev - 1, 0)
        self.missing_trades += missing_trades
        return missing_aggs, missing_trades
