"""The fast path of the non-depth stream lanes: a whole combined-stream frame decoded in C.

msgspec decodes `{"stream": name, "data": {...}}` straight into a typed payload (fields renamed
from Binance's one-letter keys, as core/events.py does for depth), the few checks msgspec cannot
express run on the typed values, and the capture encodes the record from them: no dict, no
field-by-field Python readers.

The fast path only ever accepts: each `fast_*` returns the checked payload, or None whenever
anything differs from the usual well-formed frame (a decoding or type error, a failed check,
the other venue form with odd fields). The caller then runs the reference path (orjson and
the readers of core/lanes.py, core/tickers.py, core/trades.py) on the same frame, which decides
and words the outcome. So every refusal has the reference's reason and message by
construction; an acceptance must yield exactly the reference's record, which the tests check
on real recordings, the simulator's frames and hostile payloads.

What is accepted here is what the reference accepts: ids and times non-negative integers (times
in ms, at most _MAX_MS), prices and quantities strings whose float() is finite, prices > 0,
quantities >= 0 (> 0 for trades), flags booleans (an optional one absent, never null), the
event type and symbol as expected, bid < ask, partial-depth sides within the stream's depth,
strictly ordered. The strings are kept exactly as sent.

One difference remains, in frames Binance never sends: a number too large for a double (1e999)
in a field the lane does not read makes orjson refuse the whole frame (invalid_json), while
msgspec skips it unread, so such a frame is accepted here.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from orderbook_pipeline.core.events import Price, Quantity

_MAX_ID = 2**63 - 1  # Avro long
_MAX_MS = _MAX_ID // 1000  # so that ms * 1000 is still an Avro long
Id = Annotated[int, msgspec.Meta(ge=0, le=_MAX_ID)]
Ms = Annotated[int, msgspec.Meta(ge=0, le=_MAX_MS)]
StrPair = tuple[str, str]

_INF = float("inf")


class Trade(msgspec.Struct, gc=False):
    kind: str = msgspec.field(name="e")
    symbol: str = msgspec.field(name="s")
    event_ms: Ms = msgspec.field(name="E")
    trade_ms: Ms = msgspec.field(name="T")
    trade_id: Id = msgspec.field(name="t")
    px: str = msgspec.field(name="p")
    qty: str = msgspec.field(name="q")
    buyer_maker: bool = msgspec.field(name="m")
    best_match: bool | UnsetType = msgspec.field(default=UNSET, name="M")


class AggTrade(msgspec.Struct, gc=False):
    kind: str = msgspec.field(name="e")
    symbol: str = msgspec.field(name="s")
    event_ms: Ms = msgspec.field(name="E")
    trade_ms: Ms = msgspec.field(name="T")
    agg_id: Id = msgspec.field(name="a")
    first_id: Id = msgspec.field(name="f")
    last_id: Id = msgspec.field(name="l")
    px: str = msgspec.field(name="p")
    qty: str = msgspec.field(name="q")
    buyer_maker: bool = msgspec.field(name="m")
    best_match: bool | UnsetType = msgspec.field(default=UNSET, name="M")


class BookTicker(msgspec.Struct, gc=False):
    """Spot {"u","s","b","B","a","A"} or USD-M with "e", "E", "T" as well."""

    symbol: str = msgspec.field(name="s")
    update_id: Id = msgspec.field(name="u")
    bid: str = msgspec.field(name="b")
    bid_qty: str = msgspec.field(name="B")
    ask: str = msgspec.field(name="a")
    ask_qty: str = msgspec.field(name="A")
    kind: str | UnsetType = msgspec.field(default=UNSET, name="e")
    event_ms: Ms | UnsetType = msgspec.field(default=UNSET, name="E")
    transaction_ms: Ms | UnsetType = msgspec.field(default=UNSET, name="T")


class PartialDepthData(msgspec.Struct, gc=False):
    """Spot / Binance.US {"lastUpdateId","bids","asks"} or USD-M
    {"e":"depthUpdate","E","T","s","U","u","pu","b","a"}: every key optional, the form chosen
    by "e" as the reference does."""

    kind: str | UnsetType = msgspec.field(default=UNSET, name="e")
    symbol: str | UnsetType = msgspec.field(default=UNSET, name="s")
    last_update_id: Id | UnsetType = msgspec.field(default=UNSET, name="lastUpdateId")
    bids: list[StrPair] | UnsetType = UNSET
    asks: list[StrPair] | UnsetType = UNSET
    event_ms: Ms | UnsetType = msgspec.field(default=UNSET, name="E")
    transaction_ms: Ms | UnsetType = msgspec.field(default=UNSET, name="T")
    first_id: Id | UnsetType = msgspec.field(default=UNSET, name="U")
    last_id: Id | UnsetType = msgspec.field(default=UNSET, name="u")
    prev_id: Id | UnsetType = msgspec.field(default=UNSET, name="pu")
    b: list[StrPair] | UnsetType = UNSET
    a: list[StrPair] | UnsetType = UNSET


class _PartialDepthNumbers(msgspec.Struct, gc=False):
    """The sides of a partial depth payload as doubles (decoded laxly from their strings)."""

    bids: list[tuple[Price, Quantity]] | UnsetType = UNSET
    asks: list[tuple[Price, Quantity]] | UnsetType = UNSET
    b: list[tuple[Price, Quantity]] | UnsetType = UNSET
    a: list[tuple[Price, Quantity]] | UnsetType = UNSET


class _PartialDepthNumbersFrame(msgspec.Struct, gc=False):
    data: _PartialDepthNumbers


class _TradeFrame(msgspec.Struct, gc=False):
    stream: str
    data: Trade


class _AggTradeFrame(msgspec.Struct, gc=False):
    stream: str
    data: AggTrade


class _BookTickerFrame(msgspec.Struct, gc=False):
    stream: str
    data: BookTicker


class _PartialDepthFrame(msgspec.Struct, gc=False):
    stream: str
    data: PartialDepthData


_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
_decode_trade = msgspec.json.Decoder(_TradeFrame).decode
_decode_agg = msgspec.json.Decoder(_AggTradeFrame).decode
_decode_ticker = msgspec.json.Decoder(_BookTickerFrame).decode
_decode_partial = msgspec.json.Decoder(_PartialDepthFrame).decode
# The doubles of the sides in a second pass over the frame: msgspec parses each string as
# msgspec.convert(..., strict=False) does in the reference (core/tickers.py), with the type
# compiled once here rather than looked up per call (convert cost 35k instructions a side).
_decode_partial_numbers = msgspec.json.Decoder(_PartialDepthNumbersFrame, strict=False).decode


def stream_of(frame: str | bytes) -> str | None:
    """The stream name a combined frame starts with (`{"stream":"<name>"`), or None: a cheap
    look before any decoding, to pick the lane's decoder. The decoded frame's own `stream` is
    compared with it afterwards (a repeated key, an escape)."""
    if type(frame) is str:
        if frame.startswith('{"stream":"'):
            end = frame.find('"', 11)
            if end > 0:
                return frame[11:end]
    elif type(frame) is bytes and frame.startswith(b'{"stream":"'):
        end = frame.find(b'"', 11)
        if end > 0:
            return frame[11:end].decode("ascii", "replace")
    return None


def _positive(text: str) -> float | None:
    """float(text) if finite and > 0, else None."""
    try:
        v = float(text)
    except ValueError:
        return None
    return v if 0.0 < v < _INF else None


def _non_negative(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if 0.0 <= v < _INF else None


def fast_trade(frame: str | bytes, stream: str, symbol: str) -> tuple[Trade, float, float] | None:
    """(payload, px, qty) of a well-formed `<sym>@trade` frame, else None."""
    try:
        msg = _decode_trade(frame)
    except _DECODE_ERRORS:
        return None
    d = msg.data
    if msg.stream != stream or d.kind != "trade" or d.symbol != symbol:
        return None
    px, qty = _positive(d.px), _positive(d.qty)
    if px is None or qty is None:
        return None
    return d, px, qty


def fast_agg_trade(
    frame: str | bytes, stream: str, symbol: str
) -> tuple[AggTrade, float, float] | None:
    """(payload, px, qty) of a well-formed `<sym>@aggTrade` frame, else None."""
    try:
        msg = _decode_agg(frame)
    except _DECODE_ERRORS:
        return None
    d = msg.data
    if msg.stream != stream or d.kind != "aggTrade" or d.symbol != symbol:
        return None
    if d.last_id < d.first_id:
        return None
    px, qty = _positive(d.px), _positive(d.qty)
    if px is None or qty is None:
        return None
    return d, px, qty


def fast_book_ticker(
    frame: str | bytes, stream: str, symbol: str
) -> tuple[BookTicker, float, float, float, float] | None:
    """(payload, bid, bid qty, ask, ask qty) of a well-formed `<sym>@bookTicker` frame (USD-M:
    event type, E and T present; spot: no "e"), else None."""
    try:
        msg = _decode_ticker(frame)
    except _DECODE_ERRORS:
        return None
    d = msg.data
    if msg.stream != stream or d.symbol != symbol:
        return None
    if d.kind is UNSET:
        # The spot form: the reference reads no E or T, whatever they are.
        if d.event_ms is not UNSET or d.transaction_ms is not UNSET:
            return None
    elif d.kind != "bookTicker" or d.event_ms is UNSET or d.transaction_ms is UNSET:
        return None
    bid, ask = _positive(d.bid), _positive(d.ask)
    bid_qty, ask_qty = _non_negative(d.bid_qty), _non_negative(d.ask_qty)
    if bid is None or ask is None or bid_qty is None or ask_qty is None or bid >= ask:
        return None
    return d, bid, bid_qty, ask, ask_qty


class FastPartialDepth(msgspec.Struct, gc=False):
    """A checked partial depth payload (the fields of core/tickers.py PartialDepth)."""

    last_id: int
    first_id: int | None
    prev_id: int | None
    event_us: int | None
    transaction_us: int | None
    raw_bids: list[StrPair]
    raw_asks: list[StrPair]
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


def fast_partial_depth(
    frame: str | bytes, stream: str, symbol: str, levels: int
) -> FastPartialDepth | None:
    """A well-formed `<sym>@depth<levels>[@speed]` frame checked, else None."""
    try:
        msg = _decode_partial(frame)
    except _DECODE_ERRORS:
        return None
    d = msg.data
    if msg.stream != stream:
        return None
    last_id: int
    first_id: int | None
    prev_id: int | None
    event_us: int | None
    transaction_us: int | None
    if d.kind is UNSET:
        if (d.symbol is not UNSET and d.symbol != symbol) or d.last_update_id is UNSET:
            return None
        raw_bids, raw_asks, last_id = d.bids, d.asks, d.last_update_id
        first_id = prev_id = event_us = transaction_us = None
    else:
        if d.kind != "depthUpdate" or d.symbol != symbol:
            return None
        raw_bids, raw_asks = d.b, d.a
        u, first, prev, e_ms, t_ms = d.last_id, d.first_id, d.prev_id, d.event_ms, d.transaction_ms
        if u is UNSET or first is UNSET or prev is UNSET or e_ms is UNSET or t_ms is UNSET:
            return None
        if u < first:
            return None
        last_id, first_id, prev_id = u, first, prev
        event_us, transaction_us = e_ms * 1000, t_ms * 1000
    if raw_bids is UNSET or raw_asks is UNSET:
        return None
    if len(raw_bids) > levels or len(raw_asks) > levels:
        return None
    try:
        numbers = _decode_partial_numbers(frame).data
    except _DECODE_ERRORS:
        return None
    bids, asks = (numbers.bids, numbers.asks) if d.kind is UNSET else (numbers.b, numbers.a)
    if bids is UNSET or asks is UNSET:
        return None
    bid_px = [px for px, _ in bids]
    ask_px = [px for px, _ in asks]
    if bid_px != sorted(bid_px, reverse=True) or len(set(bid_px)) != len(bid_px):
        return None
    if ask_px != sorted(ask_px) or len(set(ask_px)) != len(ask_px):
        return None
    if bid_px and ask_px and bid_px[0] >= ask_px[0]:
        return None
    return FastPartialDepth(
        last_id, first_id, prev_id, event_us, transaction_us, raw_bids, raw_asks, bids, asks
    )
