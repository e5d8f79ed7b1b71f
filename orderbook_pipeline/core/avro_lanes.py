"""Avro binary encoding of the two high-rate records of the other stream lanes: partial depth
(ten a second per symbol) and bookTicker (most events), as avro_binary.py does for L2 and
diffs: fastavro's dict walk cost ~65 µs for a depth-20 partial depth record, most of that
lane's cost. Field order follows storage/schemas.py; tests compare every byte with fastavro.
"""

from __future__ import annotations

from struct import Struct

from orderbook_pipeline.core.avro_binary import encode_long, encode_string, string_pairs
from orderbook_pipeline.core.tickers import PartialDepth

_NULL = b"\x00"
_SOME = b"\x02"
# Enum indexes as zigzag varints (one byte each).
TS_SOURCE = {"exchange": b"\x00", "receive": b"\x02"}
BOOK_CHECK = {"match": b"\x00", "mismatch": b"\x02", "unchecked": b"\x04"}
_doubles4 = Struct("<dddd").pack


def _opt_long(n: int | None) -> bytes:
    return _NULL if n is None else _SOME + encode_long(n)


def encode_partial_depth_head(prefix: bytes, levels: int, p: PartialDepth, ingest_us: int) -> bytes:
    """Everything of a partial depth record before `book_check` (known once it is compared);
    prefix = encoded venue + symbol. The record is head + BOOK_CHECK[verdict] + burst id."""
    ts, source = (ingest_us, "receive") if p.event_us is None else (p.event_us, "exchange")
    return b"".join(
        (
            prefix,
            encode_long(levels),
            encode_long(p.last_id),
            _opt_long(p.first_id),
            _opt_long(p.prev_id),
            encode_long(ts),
            TS_SOURCE[source],
            _opt_long(p.event_us),
            _opt_long(p.transaction_us),
            encode_long(ingest_us),
            string_pairs(p.raw_bids),
            string_pairs(p.raw_asks),
        )
    )


def encode_book_ticker_head(
    prefix: bytes,
    update_id: int,
    ts: int,
    ts_source: str,
    event_us: int | None,
    transaction_us: int | None,
    ingest_us: int,
    numbers: tuple[float, float, float, float],
    strings: tuple[str, str, str, str],
) -> bytes:
    """A book_ticker record up to `book_check`, as above: numbers and strings are (bid px, bid
    qty, ask px, ask qty)."""
    return b"".join(
        (
            prefix,
            encode_long(update_id),
            encode_long(ts),
            TS_SOURCE[ts_source],
            _opt_long(event_us),
            _opt_long(transaction_us),
            encode_long(ingest_us),
            _doubles4(*numbers),
            *(encode_string(text) for text in strings),
        )
    )
