"""Avro types several lanes share, and the encoders' bytes for their enums.

A leaf module (nothing of the project imported): core/ encoders read their constant bytes from
here, and the lane modules build their fields from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Times are microseconds since the epoch with the logical type inside the type, so readers that
# honour logical types see timestamps and the rest see plain longs.
TS: dict[str, Any] = {"type": "long", "logicalType": "timestamp-micros"}
OPT_TS: list[Any] = ["null", TS]
OPT_LONG: list[Any] = ["null", "long"]

STRING_LEVEL: dict[str, Any] = {
    "type": "record",
    "name": "StringLevel",
    "fields": [{"name": "px", "type": "string"}, {"name": "qty", "type": "string"}],
}
# A side of levels as the exchange sent them. A schema defines a named type once: its first
# side carries the definition, the second names it.
STRING_LEVELS: dict[str, Any] = {"type": "array", "items": STRING_LEVEL}
STRING_LEVELS_AGAIN: dict[str, Any] = {"type": "array", "items": "StringLevel"}

# The side of an L2 level.
SIDE: dict[str, Any] = {"type": "enum", "name": "Side", "symbols": ["bid", "ask"]}
# Where a record's `ts` came from: the exchange's event time, or (spot bookTicker and spot
# partial depth carry none) the local receive time standing in for it.
TS_SOURCE: dict[str, Any] = {"type": "enum", "name": "TsSource", "symbols": ["exchange", "receive"]}
# Result of comparing an exchange-published view of the book with the local book.
BOOK_CHECK: dict[str, Any] = {
    "type": "enum",
    "name": "BookCheck",
    "symbols": ["match", "mismatch", "unchecked"],
    "default": "unchecked",
}


def enum_bytes(enum: Mapping[str, Any]) -> dict[str, bytes]:
    """Each symbol's Avro encoding: its index as a zigzag varint (one byte below 64 symbols)."""
    symbols = enum["symbols"]
    if len(symbols) > 64:
        raise NotImplementedError(f"enum {enum['name']}: more than 64 symbols")
    return {s: bytes([2 * i]) for i, s in enumerate(symbols)}


BOOK_CHECK_BYTES = enum_bytes(BOOK_CHECK)  # appended by the book verifier once it has compared
SIDE_BYTES = enum_bytes(SIDE)
