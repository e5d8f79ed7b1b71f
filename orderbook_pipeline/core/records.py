"""Building bronze records from the exact book and events (design.md, "L2 lane record" etc.).

Doubles are made here and only here: each price or quantity is one correctly rounded division
of exact integers, so `px` equals float() of the exchange's decimal string.
"""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.book import OrderBook
from orderbook_pipeline.core.events import DiffEvent, RawLevels, Scales


def _string_levels(raw: RawLevels) -> list[dict[str, str]]:
    return [{"px": lvl[0], "qty": lvl[1]} for lvl in raw]


def build_l2_records(
    venue: str,
    ev: DiffEvent,
    book: OrderBook,
    depths: tuple[int, ...],
    scales: Scales,
    gap_detected: bool,
    recovered: bool,
    burst_id: str,
) -> list[dict[str, Any]]:
    """One record per configured depth for the book after `ev`; [] if a side is empty."""
    max_depth = max(depths)
    bids = book.bids.top(max_depth)
    asks = book.asks.top(max_depth)
    if not bids or not asks:
        return []
    pdiv, qdiv = scales.price_divisor, scales.qty_divisor
    best_bid, best_ask = bids[0][0], asks[0][0]
    mid = (best_bid + best_ask) / (2 * pdiv)
    spread_bps = (best_ask - best_bid) * 2 / (best_ask + best_bid) * 1e4
    bid_levels = [{"side": "bid", "px": px / pdiv, "qty": qty / qdiv} for px, qty in bids]
    ask_levels = [{"side": "ask", "px": px / pdiv, "qty": qty / qdiv} for px, qty in asks]
    event_us = ev.event_ms * 1000
    records = []
    for depth in depths:
        bid_lots = sum(qty for _, qty in bids[:depth])
        ask_lots = sum(qty for _, qty in asks[:depth])
        records.append(
            {
                "venue": venue,
                "symbol": ev.symbol,
                "event_ts": event_us,
                "ingest_ts": ev.ingest_us,
                "first_update_id": ev.first_id,
                "last_update_id": ev.last_id,
                "prev_update_id": ev.prev_id,
                "depth": depth,
                "levels": bid_levels[:depth] + ask_levels[:depth],
                "mid": mid,
                "spread_bps": spread_bps,
                "imbalance": (bid_lots - ask_lots) / (bid_lots + ask_lots),
                "gap_detected": gap_detected,
                "recovered": recovered,
                "burst_id": burst_id,
            }
        )
    return records


def build_diff_record(venue: str, ev: DiffEvent, burst_id: str) -> dict[str, Any]:
    return {
        "venue": venue,
        "symbol": ev.symbol,
        "event_ts": ev.event_ms * 1000,
        "transaction_ts": ev.transaction_ms * 1000 if ev.transaction_ms is not None else None,
        "ingest_ts": ev.ingest_us,
        "first_update_id": ev.first_id,
        "last_update_id": ev.last_id,
        "prev_update_id": ev.prev_id,
        "bids": _string_levels(ev.raw_bids),
        "asks": _string_levels(ev.raw_asks),
        "burst_id": burst_id,
    }


def build_snapshot_record(
    venue: str,
    symbol: str,
    last_update_id: int,
    raw_bids: RawLevels,
    raw_asks: RawLevels,
    request_us: int,
    response_us: int,
    limit: int,
    used_weight_1m: int | None,
    reason: str,
    burst_id: str,
) -> dict[str, Any]:
    return {
        "venue": venue,
        "symbol": symbol,
        "last_update_id": last_update_id,
        "request_ts": request_us,
        "response_ts": response_us,
        "limit": limit,
        "used_weight_1m": used_weight_1m,
        "bids": _string_levels(raw_bids),
        "asks": _string_levels(raw_asks),
        "reason": reason,
        "burst_id": burst_id,
    }
