"""Payloads of the non-depth streams (trade, aggTrade, bookTicker, partial depth) as records.

The capture decodes each combined-stream frame `{"stream": name, "data": {...}}` with orjson,
knows the symbol and lane from the stream name it subscribed (lanes/registry.py
`stream_name`), and builds the lane's record from `data`: trade_record and agg_trade_record in
core/trades.py (with IdContinuity and AggTradeContinuity, which give `missing_before`),
book_ticker_record and parse_partial_depth / partial_depth_record in core/tickers.py. This
module also holds the field readers both share. The dicts match the lanes' Avro schemas
(lanes/) field for field; `missing_before` is 0 and `book_check` "unchecked" until the caller
fills them.

Which format a payload is in is told by the payload itself, not by the venue name: a
bookTicker or partial-depth payload with an event type `e` is the USD-M form (exchange times,
every documented field required); one without is the spot / Binance.US form, whose `ts` is the
receive time. A trade or aggTrade without `M` (USD-M) gets is_best_match None.

Prices and quantities are kept twice: the strings exactly as sent (`*_str`, StringLevel) and
float() of them (the same doubles the local book holds). Times are microseconds.

A payload that cannot be used raises BadEvent carrying the stream's symbol and one of:
  wrong_types     a field missing or of the wrong JSON type (ids and times: non-negative
                  integers; prices and quantities: strings; flags: booleans; levels: lists of
                  [price, qty] string pairs), the wrong event type `e`, u < U, more levels than
                  the stream's depth
  bad_number      a decimal string float() cannot read, NaN or infinite, a price <= 0, a
                  negative quantity (a trade's must be > 0), or a price listed twice on a side
  unknown_symbol  the payload's `s` is not the stream's symbol
  crossed         best bid >= best ask (bookTicker, partial depth): Binance never sends one
  unsorted        partial-depth bids not descending or asks not ascending
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from orderbook_pipeline.core.events import BadEvent

_MAX_ID = 2**63 - 1  # Avro long
_MAX_MS = _MAX_ID // 1000  # so that ms * 1000 is still an Avro long

# --- field readers ------------------------------------------------------------------------


def get_field(data: Mapping[str, Any], key: str, what: str, symbol: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise BadEvent("wrong_types", f"{what} field {key!r} is missing", symbol) from None


def id_field(
    data: Mapping[str, Any], key: str, what: str, symbol: str, limit: int = _MAX_ID
) -> int:
    value = get_field(data, key, what, symbol)
    if type(value) is not int or not 0 <= value <= limit:
        raise BadEvent(
            "wrong_types",
            f"{what} field {key!r} must be a non-negative integer, got {value!r}",
            symbol,
        )
    return value


def ms_as_us(data: Mapping[str, Any], key: str, what: str, symbol: str) -> int:
    """An exchange time in milliseconds, as microseconds."""
    return id_field(data, key, what, symbol, _MAX_MS) * 1000


def str_field(data: Mapping[str, Any], key: str, what: str, symbol: str) -> str:
    value = get_field(data, key, what, symbol)
    if type(value) is not str:
        raise BadEvent(
            "wrong_types", f"{what} field {key!r} must be a decimal string, got {value!r}", symbol
        )
    return value


def bool_field(data: Mapping[str, Any], key: str, what: str, symbol: str) -> bool:
    value = get_field(data, key, what, symbol)
    if type(value) is not bool:
        raise BadEvent(
            "wrong_types", f"{what} field {key!r} must be a boolean, got {value!r}", symbol
        )
    return value


def opt_bool_field(data: Mapping[str, Any], key: str, what: str, symbol: str) -> bool | None:
    return bool_field(data, key, what, symbol) if key in data else None


def _float(text: str, name: str, what: str, symbol: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadEvent("bad_number", f"{what} {name} is not a decimal: {text!r}", symbol) from None


def price(text: str, what: str, symbol: str) -> float:
    px = _float(text, "price", what, symbol)
    if not 0.0 < px < math.inf:  # also false for NaN
        raise BadEvent("bad_number", f"{what} price must be finite and > 0: {text!r}", symbol)
    return px


def quantity(text: str, what: str, symbol: str, positive: bool = False) -> float:
    qty = _float(text, "quantity", what, symbol)
    if not (0.0 < qty < math.inf if positive else 0.0 <= qty < math.inf):
        bound = "> 0" if positive else ">= 0"
        raise BadEvent(
            "bad_number", f"{what} quantity must be finite and {bound}: {text!r}", symbol
        )
    return qty


def payload(data: Any, what: str, symbol: str) -> Mapping[str, Any]:
    if type(data) is not dict:
        raise BadEvent(
            "wrong_types", f"{what} payload must be an object, got {type(data).__name__}", symbol
        )
    return data


def check_event_type(data: Mapping[str, Any], expected: str, what: str, symbol: str) -> None:
    kind = data.get("e")
    if kind != expected:
        raise BadEvent(
            "wrong_types", f"{what} event type must be {expected!r}, got {kind!r}", symbol
        )


def check_symbol(data: Mapping[str, Any], what: str, symbol: str) -> None:
    s = get_field(data, "s", what, symbol)
    if s != symbol:
        if type(s) is not str:
            raise BadEvent("wrong_types", f"{what} field 's' must be a string, got {s!r}", symbol)
        raise BadEvent("unknown_symbol", f"{what} for {s!r} on the stream of {symbol!r}", symbol)
