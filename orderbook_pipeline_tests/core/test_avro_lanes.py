"""The partial depth and bookTicker records, encoded by the encoders generated from their lanes'
fields (core/avro_record.py), equal fastavro's, byte for byte."""

from __future__ import annotations

import io

import pytest
from fastavro import schemaless_writer

from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.tickers import (
    book_ticker_record,
    parse_partial_depth,
    partial_depth_record,
)
from orderbook_pipeline.lanes import book_ticker, partial_depth
from orderbook_pipeline.lanes.avro_types import BOOK_CHECK_BYTES as BOOK_CHECK
from orderbook_pipeline.lanes.registry import LANES

PREFIX = encode_string("binance-spot") + encode_string("BTCUSDT")
SUFFIX = encode_string("20261121T000000Z-abc123")
BURST = "20261121T000000Z-abc123"


def _fastavro(lane: str, record: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, LANES[lane].parsed, record)
    return buf.getvalue()


def _levels(n: int, start: float, step: float) -> list[list[str]]:
    return [[f"{start + i * step:.2f}", f"{0.5 + i:.4f}"] for i in range(n)]


@pytest.mark.parametrize("verdict", ["match", "mismatch", "unchecked"])
@pytest.mark.parametrize("n_bids,n_asks", [(20, 20), (5, 3), (0, 2), (17, 0)])
@pytest.mark.parametrize("futures", [False, True])
def test_partial_depth_matches_fastavro(
    verdict: str, n_bids: int, n_asks: int, futures: bool
) -> None:
    bids, asks = _levels(n_bids, 64999.99, -0.01), _levels(n_asks, 65000.0, 0.01)
    if futures:
        data = {
            "e": "depthUpdate",
            "E": 1_763_700_000_123,
            "T": 1_763_700_000_120,
            "s": "BTCUSDT",
            "U": 9_000_000_001,
            "u": 9_000_000_050,
            "pu": 9_000_000_000,
            "b": bids,
            "a": asks,
        }
    else:
        data = {"lastUpdateId": 1_516_569_774, "bids": bids, "asks": asks}
    ingest = 1_763_700_000_456_789
    record = partial_depth_record(data, "binance-spot", "BTCUSDT", 20, ingest, BURST)
    record["book_check"] = verdict
    parsed = parse_partial_depth(data, "BTCUSDT", 20)
    ours = partial_depth.encode_head(PREFIX, 20, parsed, ingest) + BOOK_CHECK[verdict] + SUFFIX
    assert ours == _fastavro("partial_depth", record)
    assert parsed.bids == [(float(p), float(q)) for p, q in bids]


@pytest.mark.parametrize("verdict", ["match", "mismatch", "unchecked"])
@pytest.mark.parametrize("futures", [False, True])
def test_book_ticker_matches_fastavro(verdict: str, futures: bool) -> None:
    data: dict[str, object] = {
        "u": 400_900_217,
        "s": "BTCUSDT",
        "b": "25.35190000",
        "B": "31.21000000",
        "a": "25.36520000",
        "A": "40.66000000",
    }
    if futures:
        data.update({"e": "bookTicker", "E": 1_763_700_000_123, "T": 1_763_700_000_120})
    r = book_ticker_record(data, "binance-spot", "BTCUSDT", 1_763_700_000_456_789, BURST)
    fields = [f["name"] for f in book_ticker.FIELDS if f["name"] != "book_check"]
    head = book_ticker.encode_head(PREFIX, *[r[name] for name in fields])
    r["book_check"] = verdict
    assert head + BOOK_CHECK[verdict] + SUFFIX == _fastavro("book_ticker", r)
