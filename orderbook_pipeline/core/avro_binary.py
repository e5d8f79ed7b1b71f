"""Avro binary encoding of the two per-event bronze records, without a dict per record.

fastavro's schemaless writer walks a dict per record (~10 µs for a depth-20 record); the
record layouts here are fixed by lanes/l2.py and lanes/diffs.py, so each is assembled from
pre-encoded constant parts, one struct.pack per side for the levels, and table-driven varints.
This is the capture's hottest path, tuned by hand rather than generated (core/avro_record.py);
tests check every byte against fastavro's encoding of the same record.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from itertools import chain
from operator import add
from struct import Struct
from typing import TYPE_CHECKING

import msgspec

from orderbook_pipeline.lanes.avro_types import SIDE_BYTES

if TYPE_CHECKING:
    from orderbook_pipeline.core.book import OrderBook

# --- varints (Avro long/int: zigzag, then little-endian groups of 7 bits) --------------------
_SMALL = [bytes([i]) for i in range(128)]
# Two low groups of 7 bits, both with the continuation bit: any value >= 2**14 starts so.
_LOW14 = [bytes([(i & 0x7F) | 0x80, ((i >> 7) & 0x7F) | 0x80]) for i in range(1 << 14)]
_high: dict[int, bytes] = {}  # encodings of value >> 28; times and ids repeat these for minutes


def _varint(z: int) -> bytes:
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def encode_long(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    return _varint(z) if z < 1 << 28 else _long_fast(z)


def encode_string(text: str) -> bytes:
    data = text.encode()
    return encode_long(len(data)) + data


# The L2 imbalance sums quantities left to right from 0.0, as sum() does up to Python 3.11 (and
# the compiled core does); 3.12's sum() compensates rounding, which would change the bytes.
_sum_left: Callable[[Iterable[float]], float] = (
    sum if sys.version_info < (3, 12) else lambda xs: reduce(add, xs, 0.0)
)

_NULL = b"\x00"  # union branch 0 (null) / an empty array's end / boolean false
_SOME = b"\x02"  # union branch 1
_LEVEL = 17  # bytes of one encoded level: side enum (1), px double (8), qty double (8)
_bid_packers: dict[int, Struct] = {}
_ask_packers: dict[int, Struct] = {}
_tail = Struct("<ddd??")


def _levels(px: list[float], qty: Sequence[float], ask: bool = False) -> bytes:
    """Levels as Avro {side, px, qty} records, best first, in one struct.pack.

    Prices and quantities are interleaved by slice assignment, which runs in C. A bid's side
    byte (zigzag of enum index 0) is a zero, which struct writes as a pad byte; an ask's (2)
    comes from a template list (callgrind: 9.9k and 12.7k instructions for 20 levels, against
    19.7k for chain/zip interleaving).
    """
    n = len(px)
    if ask:
        packer = _ask_packers.get(n)
        if packer is None:
            packer = _ask_packers[n] = Struct("<" + "Bdd" * n)
        values = _ASK_TEMPLATE[: 3 * n]
        values[1::3] = px
        values[2::3] = qty
    else:
        packer = _bid_packers.get(n)
        if packer is None:
            packer = _bid_packers[n] = Struct("<" + "xdd" * n)
        values = [0.0] * (2 * n)
        values[::2] = px
        values[1::2] = qty
    return packer.pack(*values)


# The side bytes of the schema's enum: a bid's must be the zero struct writes for a pad byte.
if SIDE_BYTES["bid"] != b"\x00":
    raise ImportError("L2 levels are encoded with a bid's side byte as a pad byte: it must be 0")
_ASK_TEMPLATE: list[float | int] = [SIDE_BYTES["ask"][0], 0.0, 0.0] * 5000


def _long_fast(z: int) -> bytes:
    """Varint of a zigzagged value >= 2**28: two table lookups and a cached high part."""
    hi = z >> 28
    tail = _high.get(hi)
    if tail is None:
        if len(_high) > 4096:
            _high.clear()
        tail = _high[hi] = _varint(hi)
    return _LOW14[z & 0x3FFF] + _LOW14[(z >> 14) & 0x3FFF] + tail


def _longs4(a: int, b: int, c: int, d: int) -> bytes:
    """Four non-negative longs (times in µs, update ids) in one call: the per-event head."""
    za, zb, zc, zd = a << 1, b << 1, c << 1, d << 1  # zigzag of a non-negative n is 2n
    if a < 0 or b < 0 or c < 0 or d < 0 or min(za, zb, zc, zd) < 1 << 28:
        return encode_long(a) + encode_long(b) + encode_long(c) + encode_long(d)
    low, high = _LOW14, _high
    ta, tb, tc, td = high.get(za >> 28), high.get(zb >> 28), high.get(zc >> 28), high.get(zd >> 28)
    if ta is None or tb is None or tc is None or td is None:
        return _long_fast(za) + _long_fast(zb) + _long_fast(zc) + _long_fast(zd)
    return b"".join(
        (
            low[za & 0x3FFF],
            low[(za >> 14) & 0x3FFF],
            ta,
            low[zb & 0x3FFF],
            low[(zb >> 14) & 0x3FFF],
            tb,
            low[zc & 0x3FFF],
            low[(zc >> 14) & 0x3FFF],
            tc,
            low[zd & 0x3FFF],
            low[(zd >> 14) & 0x3FFF],
            td,
        )
    )


class L2Encoder:
    """L2 records of one (venue, symbol, burst): one per configured depth for each event."""

    __slots__ = (
        "_counts",
        "_depth_items",
        "_prefix",
        "_suffix",
        "ask_levels",
        "bid_levels",
        "depths",
        "max_depth",
    )

    def __init__(self, venue: str, symbol: str, depths: tuple[int, ...], burst_id: str) -> None:
        self.depths = tuple(sorted(depths))
        self.max_depth = self.depths[-1]
        self._prefix = encode_string(venue) + encode_string(symbol)
        self._suffix = encode_string(burst_id)
        self._depth_items = [(d, encode_long(d)) for d in self.depths]
        self._counts = [encode_long(n) for n in range(2 * self.max_depth + 1)]
        self.bid_levels = self.ask_levels = 0  # per side, in the deepest record last encoded

    def encode_book(
        self,
        book: OrderBook,
        event_us: int,
        ingest_us: int,
        first_id: int,
        last_id: int,
        prev_id: int | None,
        gap_detected: bool,
        recovered: bool,
    ) -> list[bytes] | None:
        """encode() of the book's best max_depth levels a side, or None when either side is
        empty (the compiled core's L2Encoder has the same method)."""
        n = self.max_depth
        bid_px, bid_qty = book.bids.top_lists(n)
        ask_px, ask_qty = book.asks.top_lists(n)
        self.bid_levels, self.ask_levels = len(bid_px), len(ask_px)
        if not bid_px or not ask_px:
            return None
        return self.encode(
            event_us,
            ingest_us,
            first_id,
            last_id,
            prev_id,
            bid_px,
            bid_qty,
            ask_px,
            ask_qty,
            gap_detected,
            recovered,
        )

    def encode(
        self,
        event_us: int,
        ingest_us: int,
        first_id: int,
        last_id: int,
        prev_id: int | None,
        bid_px: list[float],
        bid_qty: Sequence[float],
        ask_px: list[float],
        ask_qty: Sequence[float],
        gap_detected: bool,
        recovered: bool,
    ) -> list[bytes]:
        """One encoded record per depth (ascending), from the book's best levels, best first
        (at most max_depth a side, both sides non-empty)."""
        head = b"".join(
            (
                self._prefix,
                _longs4(event_us, ingest_us, first_id, last_id),
                _NULL if prev_id is None else _SOME + encode_long(prev_id),
            )
        )
        bids = _levels(bid_px, bid_qty)
        asks = _levels(ask_px, ask_qty, ask=True)
        nb_all, na_all = len(bid_px), len(ask_px)
        best_bid, best_ask = bid_px[0], ask_px[0]
        mid = (best_bid + best_ask) / 2
        spread_bps = (best_ask - best_bid) / mid * 1e4
        tail, suffix, counts = _tail.pack, self._suffix, self._counts
        out = []
        for depth, depth_bytes in self._depth_items:
            nb = nb_all if nb_all < depth else depth
            na = na_all if na_all < depth else depth
            bid_sum = _sum_left(bid_qty[:nb])
            ask_sum = _sum_left(ask_qty[:na])
            out.append(
                b"".join(
                    (
                        head,
                        depth_bytes,
                        counts[nb + na],
                        bids[: _LEVEL * nb],
                        asks[: _LEVEL * na],
                        _NULL,
                        tail(
                            mid,
                            spread_bps,
                            (bid_sum - ask_sum) / (bid_sum + ask_sum),
                            gap_detected,
                            recovered,
                        ),
                        suffix,
                    )
                )
            )
        return out


def encode_diff(
    prefix: bytes,
    event_us: int,
    transaction_us: int | None,
    ingest_us: int,
    first_id: int,
    last_id: int,
    prev_id: int | None,
    raw_levels: bytes,
    suffix: bytes,
) -> bytes:
    """A raw diff lane record; prefix = encoded venue + symbol, raw_levels = the bids and asks
    arrays (string_pairs of each side, as the depth decode keeps them), suffix = encoded burst
    id. The reference of core/depth_scan.pyx's encode_diff."""
    return b"".join(
        (
            prefix,
            encode_long(event_us),
            _NULL if transaction_us is None else _SOME + encode_long(transaction_us),
            encode_long(ingest_us),
            encode_long(first_id),
            encode_long(last_id),
            _NULL if prev_id is None else _SOME + encode_long(prev_id),
            raw_levels,
            suffix,
        )
    )


# The diff lane's strings, encoded in C: msgpack writes each [px, qty] pair as 0x92 (an array of
# two) followed by each string as one byte 0xa0 + length (strings shorter than 32 bytes) and the
# bytes. Avro writes the length as a zigzag varint, one byte 2 * length, and nothing for the
# pair. The exchange's numbers are short ASCII (bytes < 0x80), so deleting 0x92 and mapping the
# bytes 0xa0..0xbf to 2 * (byte - 0xa0) turns msgpack's encoding into Avro's, touching nothing
# else. Anything else (a long or non-ASCII string) takes the general path.
_MSGPACK_TO_AVRO = bytes(2 * (b - 0xA0) if 0xA0 <= b < 0xC0 else b for b in range(256))
_MSGPACK_PAIR = b"\x92"
_SHORT_ASCII_PAIRS = bytes([0x92, *range(0xA0, 0xC0), *range(0x80)])
_msgpack = msgspec.msgpack.Encoder().encode


def string_pairs(levels: Sequence[Sequence[str]]) -> bytes:
    """An array of {px: string, qty: string}: a side's strings in a few C calls."""
    n = len(levels)
    if not n:
        return _NULL
    body = _msgpack(levels)[1 if n < 16 else 3 if n < 65536 else 5 :]  # minus the array header
    # A long string would show as 0xd9..0xdb, a non-ASCII one as a UTF-8 lead byte >= 0xc2.
    if not body.translate(None, _SHORT_ASCII_PAIRS):
        body = body.translate(_MSGPACK_TO_AVRO, _MSGPACK_PAIR)
    else:
        body = b"".join(encode_string(s) for s in chain.from_iterable(levels))
    return encode_long(n) + body + _NULL
