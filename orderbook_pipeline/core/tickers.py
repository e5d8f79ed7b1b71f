"""bookTicker and partial depth payloads as records, and their top of book (see lanes.py)."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from orderbook_pipeline.core.events import BadEvent, Price, Quantity
from orderbook_pipeline.core.lanes import (
    check_event_type,
    check_symbol,
    get_field,
    id_field,
    ms_as_us,
    payload,
    price,
    quantity,
    str_field,
)


def book_ticker_record(
    data: Any, venue: str, symbol: str, ingest_us: int, burst_id: str
) -> dict[str, Any]:
    """BookTickerRecord of a `<sym>@bookTicker` payload: spot {"u","s","b","B","a","A"} (no
    event time: ts is the receive time) or USD-M {"e":"bookTicker","u","s","b","B","a","A",
    "T","E"} (ts = E)."""
    what = "bookTicker"
    d = payload(data, what, symbol)
    if "e" in d:
        check_event_type(d, "bookTicker", what, symbol)
        event_ts: int | None = ms_as_us(d, "E", what, symbol)
        transaction_ts: int | None = ms_as_us(d, "T", what, symbol)
    else:
        event_ts = transaction_ts = None
    check_symbol(d, what, symbol)
    update_id = id_field(d, "u", what, symbol)
    b, bq, a, aq = (str_field(d, k, what, symbol) for k in ("b", "B", "a", "A"))
    bid_px, ask_px = price(b, what, symbol), price(a, what, symbol)
    bid_qty, ask_qty = quantity(bq, what, symbol), quantity(aq, what, symbol)
    if bid_px >= ask_px:
        raise BadEvent("crossed", f"{what} bid {b} >= ask {a}", symbol)
    return {
        "venue": venue,
        "symbol": symbol,
        "update_id": update_id,
        "ts": ingest_us if event_ts is None else event_ts,
        "ts_source": "receive" if event_ts is None else "exchange",
        "event_ts": event_ts,
        "transaction_ts": transaction_ts,
        "ingest_ts": ingest_us,
        "bid_px": bid_px,
        "bid_qty": bid_qty,
        "ask_px": ask_px,
        "ask_qty": ask_qty,
        "bid_px_str": b,
        "bid_qty_str": bq,
        "ask_px_str": a,
        "ask_qty_str": aq,
        "book_check": "unchecked",
        "burst_id": burst_id,
    }


# Shape, string types and numbers of a side checked in C (a partial depth frame has up to 40
# levels, ten times a second for every symbol: float() in a Python loop took twice as long).
_convert = msgspec.convert
_STRING_PAIRS = list[tuple[str, str]]
_NUMBER_PAIRS = list[tuple[Price, Quantity]]


def _side(raw: Any, levels: int, side: str, symbol: str) -> list[tuple[float, float]]:
    """The (price, quantity) doubles of one side of a partial depth payload, checked: string
    pairs, finite numbers, bids strictly descending and asks strictly ascending."""
    what = f"partial depth {side}"
    if type(raw) is not list:
        raise BadEvent("wrong_types", f"{what} must be a list, got {type(raw).__name__}", symbol)
    if len(raw) > levels:
        raise BadEvent("wrong_types", f"{what}: {len(raw)} levels on a stream of {levels}", symbol)
    try:
        _convert(raw, _STRING_PAIRS)
        numbers: list[tuple[float, float]] = _convert(raw, _NUMBER_PAIRS, strict=False)
    except msgspec.ValidationError:
        # msgspec reads a subset of what float() reads: float() decides, and words the refusal.
        numbers = _checked_numbers(raw, what, symbol)
    prices = [px for px, _ in numbers]
    descending = side == "bids"
    if prices != sorted(prices, reverse=descending) or len(set(prices)) != len(prices):
        _order_problem(raw, prices, descending, what, symbol)
    return numbers


def _order_problem(
    raw: list[Any], prices: list[float], descending: bool, what: str, symbol: str
) -> None:
    for i in range(1, len(prices)):
        prev, px = prices[i - 1], prices[i]
        if px == prev:
            raise BadEvent("bad_number", f"{what} list the price {raw[i][0]} twice", symbol)
        if (px > prev) if descending else (px < prev):
            order = "descending" if descending else "ascending"
            raise BadEvent(
                "unsorted", f"{what} are not {order}: {raw[i][0]} after {raw[i - 1][0]}", symbol
            )


def _checked_numbers(raw: list[Any], what: str, symbol: str) -> list[tuple[float, float]]:
    numbers = []
    for level in raw:
        if type(level) is not list or len(level) != 2 or not all(type(v) is str for v in level):
            raise BadEvent(
                "wrong_types", f"{what}: level must be [price, qty] strings: {level!r}", symbol
            )
        numbers.append((price(level[0], what, symbol), quantity(level[1], what, symbol)))
    return numbers


class PartialDepth(NamedTuple):
    """A checked partial depth payload: the strings as sent and their doubles."""

    last_id: int
    first_id: int | None  # USD-M U
    prev_id: int | None  # USD-M pu
    event_us: int | None  # USD-M E (spot and Binance.US send no event time)
    transaction_us: int | None  # USD-M T
    raw_bids: list[list[str]]
    raw_asks: list[list[str]]
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


def parse_partial_depth(data: Any, symbol: str, levels: int) -> PartialDepth:
    """A `<sym>@depth<levels>[@speed]` payload checked: spot / Binance.US
    {"lastUpdateId","bids","asks"} (no symbol, no event time) or USD-M
    {"e":"depthUpdate","E","T","s","U","u","pu","b","a"}."""
    what = "partial depth"
    d = payload(data, what, symbol)
    first_id: int | None
    prev_id: int | None
    event_ts: int | None
    transaction_ts: int | None
    if "e" in d:
        check_event_type(d, "depthUpdate", what, symbol)
        check_symbol(d, what, symbol)
        last_id, first_id = id_field(d, "u", what, symbol), id_field(d, "U", what, symbol)
        if last_id < first_id:
            raise BadEvent("wrong_types", f"{what} u={last_id} < U={first_id}", symbol)
        prev_id = id_field(d, "pu", what, symbol)
        event_ts, transaction_ts = ms_as_us(d, "E", what, symbol), ms_as_us(d, "T", what, symbol)
        raw_bids, raw_asks = get_field(d, "b", what, symbol), get_field(d, "a", what, symbol)
    else:
        if "s" in d:
            check_symbol(d, what, symbol)
        last_id = id_field(d, "lastUpdateId", what, symbol)
        first_id = prev_id = event_ts = transaction_ts = None
        raw_bids, raw_asks = get_field(d, "bids", what, symbol), get_field(d, "asks", what, symbol)
    bids = _side(raw_bids, levels, "bids", symbol)
    asks = _side(raw_asks, levels, "asks", symbol)
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise BadEvent(
            "crossed", f"{what} best bid {raw_bids[0][0]} >= best ask {raw_asks[0][0]}", symbol
        )
    return PartialDepth(
        last_id, first_id, prev_id, event_ts, transaction_ts, raw_bids, raw_asks, bids, asks
    )


def partial_depth_record(
    data: Any, venue: str, symbol: str, levels: int, ingest_us: int, burst_id: str
) -> dict[str, Any]:
    """PartialDepthRecord of a `<sym>@depth<levels>[@speed]` payload (parse_partial_depth);
    spot and Binance.US send no event time: ts is then the receive time."""
    p = parse_partial_depth(data, symbol, levels)
    return {
        "venue": venue,
        "symbol": symbol,
        "levels": levels,
        "last_update_id": p.last_id,
        "first_update_id": p.first_id,
        "prev_update_id": p.prev_id,
        "ts": ingest_us if p.event_us is None else p.event_us,
        "ts_source": "receive" if p.event_us is None else "exchange",
        "event_ts": p.event_us,
        "transaction_ts": p.transaction_us,
        "ingest_ts": ingest_us,
        "bids": [{"px": px, "qty": qty} for px, qty in p.raw_bids],
        "asks": [{"px": px, "qty": qty} for px, qty in p.raw_asks],
        "book_check": "unchecked",
        "burst_id": burst_id,
    }
