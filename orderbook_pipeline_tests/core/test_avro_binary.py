from __future__ import annotations

import io
import random

import orjson
import pytest
from fastavro import schemaless_reader, schemaless_writer

from orderbook_pipeline.core.avro_binary import L2Encoder, encode_long, encode_string, string_pairs
from orderbook_pipeline.core.depth_codec import PYTHON
from orderbook_pipeline.lanes.registry import LANES


def fastavro_bytes(lane: str, record: dict) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, LANES[lane].parsed, record)
    return buf.getvalue()


@pytest.mark.parametrize(
    "n",
    [0, 1, -1, 63, 64, -65, 2**14, 2**28 - 1, 2**28, 1_700_000_000_123_456, -(2**63), 2**63 - 1],
)
def test_longs_match_fastavro(n):
    buf = io.BytesIO()
    schemaless_writer(buf, {"type": "long"}, n)
    assert encode_long(n) == buf.getvalue()


def l2_dict(depth, bids, asks, gap, rec, prev_id):
    bb, ba = bids[0][0], asks[0][0]
    mid = (bb + ba) / 2
    sb, sa = sum(q for _, q in bids[:depth]), sum(q for _, q in asks[:depth])
    return {
        "venue": "binance-usdm",
        "symbol": "BTCUSDT",
        "event_ts": 1_700_000_000_123_000,
        "ingest_ts": 1_700_000_000_130_456,
        "first_update_id": 9_000_000_001,
        "last_update_id": 9_000_000_042,
        "prev_update_id": prev_id,
        "depth": depth,
        "levels": [{"side": "bid", "px": p, "qty": q} for p, q in bids[:depth]]
        + [{"side": "ask", "px": p, "qty": q} for p, q in asks[:depth]],
        "mid": mid,
        "spread_bps": (ba - bb) / mid * 1e4,
        "imbalance": (sb - sa) / (sb + sa),
        "gap_detected": gap,
        "recovered": rec,
        "burst_id": "20261121T120000Z-ab12",
    }


@pytest.mark.parametrize(("nb", "na"), [(50, 50), (3, 70), (1, 1), (12, 20)])
@pytest.mark.parametrize("prev_id", [None, 9_000_000_000])
def test_l2_records_match_fastavro_byte_for_byte(nb, na, prev_id):
    rng = random.Random(nb * 100 + na)
    bids = [(65000.01 - i * 0.01, rng.randrange(1, 10**6) / 1e5) for i in range(nb)]
    asks = [(65000.02 + i * 0.01, rng.randrange(1, 10**6) / 1e5) for i in range(na)]
    enc = L2Encoder("binance-usdm", "BTCUSDT", (50, 10, 20), "20261121T120000Z-ab12")
    out = enc.encode(
        1_700_000_000_123_000,
        1_700_000_000_130_456,
        9_000_000_001,
        9_000_000_042,
        prev_id,
        [p for p, _ in bids[:50]],
        [q for _, q in bids[:50]],
        [p for p, _ in asks[:50]],
        [q for _, q in asks[:50]],
        True,
        False,
    )
    assert len(out) == 3
    for depth, data in zip((10, 20, 50), out, strict=True):
        expected = l2_dict(depth, bids, asks[:50], True, False, prev_id)
        assert data == fastavro_bytes("l2", expected)
        decoded = schemaless_reader(io.BytesIO(data), LANES["l2"].parsed, None)
        assert decoded["levels"][0] == {"side": "bid", "px": bids[0][0], "qty": bids[0][1]}


@pytest.mark.parametrize(("nb", "na"), [(50, 50), (3, 70), (1, 1), (12, 20), (70, 9)])
@pytest.mark.parametrize(
    ("prev_id", "ids"),
    [
        (None, (1_700_000_000_123_000, 1_700_000_000_130_456, 9_000_000_001, 9_000_000_042)),
        (9_000_000_000, (1_700_000_000_123_000, 1_700_000_000_130_456, 5, 2**62)),
        (0, (0, 127, 128, 2**28)),
    ],
)
def test_l2_records_from_a_book_match_fastavro_byte_for_byte(core, nb, na, prev_id, ids):
    # Each core's encoder reading its own book: the compiled one straight from its arrays.
    rng = random.Random(nb * 100 + na)
    bids = [(65000.01 - i * 0.01, rng.randrange(1, 10**9) / 1e7) for i in range(nb)]
    asks = [(65000.02 + i * 0.01, rng.randrange(1, 10**9) / 1e7) for i in range(na)]
    book = core.book(50)
    book.load(1, bids, asks)
    enc = core.l2_encoder("binance-usdm", "BTCUSDT", (50, 10, 20), "20261121T120000Z-ab12")
    out = enc.encode_book(book, *ids, prev_id, False, True)
    assert out is not None and len(out) == 3
    assert (enc.bid_levels, enc.ask_levels) == (min(nb, 50), min(na, 50))
    for depth, data in zip((10, 20, 50), out, strict=True):
        expected = l2_dict(depth, bids, asks[:50], False, True, prev_id)
        keys = ("event_ts", "ingest_ts", "first_update_id", "last_update_id")
        expected.update(zip(keys, ids, strict=True))
        assert data == fastavro_bytes("l2", expected)
    book.load(2, bids, [])
    assert enc.encode_book(book, *ids, prev_id, False, True) is None


def diff_dict(bids, asks, futures):
    return {
        "venue": "binance-spot",
        "symbol": "ETHUSDT",
        "event_ts": 1_700_000_000_123_000,
        "transaction_ts": 1_700_000_000_120_000 if futures else None,
        "ingest_ts": 1_700_000_000_124_000,
        "first_update_id": 5,
        "last_update_id": 9,
        "prev_update_id": 4 if futures else None,
        "bids": [{"px": p, "qty": q} for p, q in bids],
        "asks": [{"px": p, "qty": q} for p, q in asks],
        "burst_id": "b1",
    }


def encode_diff_of(codec, record, raw_levels):
    return codec.encode_diff(
        encode_string(record["venue"]) + encode_string(record["symbol"]),
        record["event_ts"],
        record["transaction_ts"],
        record["ingest_ts"],
        record["first_update_id"],
        record["last_update_id"],
        record["prev_update_id"],
        raw_levels,
        encode_string(record["burst_id"]),
    )


DIFF_SIDES = [
    ([("65000.01000000", "0.01230000"), ("64999.00000000", "0.00000000")], []),
    ([], [("1.5", "2")]),
    ([("1" * 70, "2")], [("ünïcode", "1")]),  # long and non-ASCII strings: the slow path
    ([("1" * 31, "2" * 32)], [("é" * 3, "1")]),  # the longest short string, and one past it
    ([(f"{65000 - i}.01000000", f"{i}.5") for i in range(20)], []),  # a 3-byte msgpack header
    ([(f"{i}.1", "0.00000000") for i in range(70_000)], []),  # a 5-byte msgpack header
]


@pytest.mark.parametrize(("bids", "asks"), DIFF_SIDES)
@pytest.mark.parametrize("futures", [False, True])
def test_diff_records_match_fastavro_byte_for_byte(depth_codec, bids, asks, futures):
    record = diff_dict(bids, asks, futures)
    data = encode_diff_of(depth_codec, record, string_pairs(bids) + string_pairs(asks))
    assert data == fastavro_bytes("diffs", record)


@pytest.mark.parametrize(("bids", "asks"), [s for s in DIFF_SIDES if str(s).isascii()])
@pytest.mark.parametrize("futures", [False, True])
def test_diff_records_from_a_decoded_frame_match_fastavro(depth_codec, bids, asks, futures):
    """The strings as the decode keeps them (the compiled one writes their Avro encoding
    while it scans the frame), then the record."""
    record = diff_dict(bids, asks, futures)
    payload = {"e": "depthUpdate", "E": 1_700_000_000_123, "s": "ETHUSDT", "U": 5, "u": 9}
    if futures:
        payload |= {"T": 1_700_000_000_120, "pu": 4}
    payload |= {"b": bids, "a": asks}
    ev = depth_codec.decode_depth_frame(orjson.dumps(payload), {"ETHUSDT"}, 0, futures, True, False)
    assert ev.raw_levels is not None
    assert encode_diff_of(depth_codec, record, ev.raw_levels) == fastavro_bytes("diffs", record)


@pytest.mark.parametrize(
    "values",
    [(2**63, 0, 1, 2, 3), (-(2**63), 0, 1, 2, None), (0, -1, -(2**40), 2**63 - 1, 2**62)],
)
def test_diff_heads_at_the_ends_of_a_long_encode_alike(depth_codec, values):
    """Outside a signed 64-bit long the compiled encoder leaves the record to the reference."""
    event_us, ingest_us, first_id, last_id, prev_id = values
    args = (b"\x02a", event_us, None, ingest_us, first_id, last_id, prev_id, b"\x00\x00", b"")
    assert depth_codec.encode_diff(*args) == PYTHON.encode_diff(*args)


@pytest.mark.parametrize(
    "values",
    [
        (1_700_000_000_123_000, 1_700_000_000_124_000, 38_531_387_766, 38_531_387_800),
        (5, 1_700_000_000_124_000, 0, 2**40),  # small values take the general path
        (-3, 2**28, 2**27, 2**63 - 1),
    ],
)
def test_four_longs_at_once_match_one_by_one(values):
    from orderbook_pipeline.core.avro_binary import _longs4

    assert _longs4(*values) == b"".join(encode_long(v) for v in values)
    assert _longs4(*values) == b"".join(encode_long(v) for v in values)  # cached high parts
