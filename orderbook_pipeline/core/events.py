"""Depth events and snapshots decoded from Binance JSON into validated values.

A depth frame is decoded once, in C, by msgspec straight into a typed event whose prices and
quantities are already doubles checked to be finite, prices > 0 and quantities >= 0 (the
exchange's strings are parsed with correct rounding, so each double equals float() of its
string). Anything that does not fit raises BadEvent with a short reason the capture counts:
`invalid_json`, `wrong_types`, `bad_number`, `unknown_symbol`. The strings exactly as sent are
decoded separately, only for the raw diff lane, and kept as their Avro encoding.

This is the reference implementation; core/depth_scan.pyx is the compiled one (one pass, the
same results), and core/depth_codec.py names the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from orderbook_pipeline.core.avro_binary import string_pairs
from orderbook_pipeline.core.book import Level

RawLevels = list[tuple[str, str]]

# Finite by construction: msgspec rejects NaN and infinities against these bounds.
Price = Annotated[float, msgspec.Meta(gt=0.0, lt=1e300)]
Quantity = Annotated[float, msgspec.Meta(ge=0.0, lt=1e300)]
Id = Annotated[int, msgspec.Meta(ge=0)]


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


class DiffEvent(msgspec.Struct, gc=False):
    """One depthUpdate. Field names are ours; `rename` maps them to Binance's one-letter keys."""

    symbol: str = msgspec.field(name="s")
    event_ms: Id = msgspec.field(name="E")
    first_id: Id = msgspec.field(name="U")
    last_id: Id = msgspec.field(name="u")
    # The compiled decoder (core/depth_scan.pyx) puts a _book.Levels here instead: the same
    # (price, quantity) pairs as C doubles, which the compiled book reads without a Python
    # float per level; to Python it is a read-only sequence equal to this list.
    bids: list[tuple[Price, Quantity]] = msgspec.field(name="b")
    asks: list[tuple[Price, Quantity]] = msgspec.field(name="a")
    prev_id: Id | None = msgspec.field(default=None, name="pu")
    transaction_ms: Id | None = msgspec.field(default=None, name="T")
    # Set by the capture, not decoded:
    ingest_us: int = 0
    # The diff lane's bids and asks arrays, Avro-encoded from the exact strings as sent
    # (avro_binary.string_pairs of each side): what encode_diff writes between its head and tail.
    raw_levels: bytes | None = None


class _CombinedDepth(msgspec.Struct, gc=False):
    stream: str
    data: DiffEvent


class _RawDepth(msgspec.Struct, gc=False):
    bids: RawLevels = msgspec.field(name="b")
    asks: RawLevels = msgspec.field(name="a")


class _CombinedRawDepth(msgspec.Struct, gc=False):
    data: _RawDepth


_decode_combined = msgspec.json.Decoder(_CombinedDepth, strict=False).decode
_decode_plain = msgspec.json.Decoder(DiffEvent, strict=False).decode
_decode_combined_raw = msgspec.json.Decoder(_CombinedRawDepth).decode
_decode_plain_raw = msgspec.json.Decoder(_RawDepth).decode


def decode_depth_frame(
    frame: str | bytes,
    symbols: dict[str, Any] | frozenset[str],
    ingest_us: int,
    with_prev_id: bool,
    keep_strings: bool = True,
    combined: bool = True,
) -> DiffEvent:
    """Decode a depthUpdate frame (`{"stream":..,"data":{..}}` when combined) for a subscribed
    symbol. Raises BadEvent for a depth event that cannot be used, and NotDepth for anything
    the fast decoder refuses (other events, acknowledgements, malformed frames: classify_frame
    on the generic JSON tells them apart)."""
    try:
        ev = _decode_combined(frame).data if combined else _decode_plain(frame)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise NotDepth from None
    symbol = ev.symbol
    if symbol not in symbols:
        raise BadEvent("unknown_symbol", f"event for unsubscribed symbol {symbol!r}", symbol)
    if ev.last_id < ev.first_id:
        raise BadEvent("wrong_types", f"u={ev.last_id} < U={ev.first_id}", symbol)
    if with_prev_id and ev.prev_id is None:
        raise BadEvent("wrong_types", "field 'pu' is missing", symbol)
    if not with_prev_id:
        ev.prev_id = None
    ev.ingest_us = ingest_us
    if keep_strings:
        # Also the type check that prices and quantities are strings (the lax float decoding
        # above would take bare numbers too).
        try:
            raw = _decode_combined_raw(frame).data if combined else _decode_plain_raw(frame)
        except msgspec.ValidationError:
            raise NotDepth from None
        ev.raw_levels = string_pairs(raw.bids) + string_pairs(raw.asks)
    return ev


class NotDepth(Exception):
    """The frame is not a well-formed depth event: classify_frame tells what it is."""


def classify_frame(data: Any) -> BadEvent | None:
    """Why a decoded JSON value that looks like a depthUpdate payload cannot be used (the slow
    path, only for frames the fast decoder refused); None if it is not a depthUpdate at all."""
    if type(data) is not dict or data.get("e") != "depthUpdate":
        return None
    symbol = data.get("s")
    if type(symbol) is not str:
        return BadEvent("wrong_types", f"symbol must be a string, got {symbol!r}")
    for key in ("E", "U", "u"):
        value = data.get(key)
        if type(value) is not int or value < 0:
            return BadEvent(
                "wrong_types",
                f"field {key!r} must be a non-negative integer, got {value!r}",
                symbol,
            )
    for key in ("b", "a"):
        problem = _levels_problem(data.get(key), symbol)
        if problem is not None:
            return problem
    return BadEvent("wrong_types", f"unexpected depthUpdate shape: {str(data)[:200]}", symbol)


def _levels_problem(raw: Any, symbol: str | None) -> BadEvent | None:
    if type(raw) is not list:
        return BadEvent("wrong_types", f"levels must be a list, got {type(raw).__name__}", symbol)
    for level in raw:
        if type(level) is not list or len(level) != 2 or not all(type(v) is str for v in level):
            return BadEvent("wrong_types", f"level must be [price, qty] strings: {level!r}", symbol)
        try:
            px, qty = float(level[0]), float(level[1])
        except ValueError:
            return BadEvent("bad_number", f"not a decimal: {level!r}", symbol)
        if not (0.0 < px < math.inf and 0.0 <= qty < math.inf):
            return BadEvent(
                "bad_number", f"NaN, infinite, negative or zero price: {level!r}", symbol
            )
    return None


@dataclass(slots=True)
class Snapshot:
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    raw_bids: RawLevels
    raw_asks: RawLevels


def parse_snapshot(data: Any, symbol: str) -> Snapshot:
    """Validate a REST depth snapshot (already decoded JSON)."""
    if type(data) is not dict:
        raise BadEvent(
            "wrong_types", f"snapshot must be an object, got {type(data).__name__}", symbol
        )
    last_update_id = data.get("lastUpdateId")
    if type(last_update_id) is not int or last_update_id < 0:
        raise BadEvent("wrong_types", f"lastUpdateId must be an integer: {last_update_id!r}")
    raw_bids, raw_asks = data.get("bids"), data.get("asks")
    for raw in (raw_bids, raw_asks):
        problem = _levels_problem(raw, symbol)
        if problem is not None:
            raise problem
    bids = [(float(p), float(q)) for p, q in raw_bids]  # type: ignore[union-attr]
    asks = [(float(p), float(q)) for p, q in raw_asks]  # type: ignore[union-attr]
    for side in (bids, asks):
        if len({p for p, _ in side}) != len(side):
            raise BadEvent("bad_number", "a snapshot lists the same price twice", symbol)
    return Snapshot(
        last_update_id=last_update_id,
        bids=bids,
        asks=asks,
        raw_bids=raw_bids,  # type: ignore[arg-type]
        raw_asks=raw_asks,  # type: ignore[arg-type]
    )
