"""book_ticker: best bid/ask updates (<sym>@bookTicker), each compared with the local book.

Most events of a capture are these, so a record is encoded straight to Avro binary by an
encoder generated from the fields below (core/avro_record.py): `encode_head` writes everything
before `book_check`, which the book verifier appends once it has compared the update, then the
burst id.
"""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.avro_record import record_encoder
from orderbook_pipeline.core.tickers import book_ticker_record
from orderbook_pipeline.lanes.avro_types import BOOK_CHECK, OPT_TS, TS, TS_SOURCE
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, asc

FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "update_id", "type": "long"},
    {"name": "ts", "type": TS},
    {"name": "ts_source", "type": TS_SOURCE},
    {"name": "event_ts", "type": OPT_TS, "default": None},
    {"name": "transaction_ts", "type": OPT_TS, "default": None},
    {"name": "ingest_ts", "type": TS},
    {"name": "bid_px", "type": "double"},
    {"name": "bid_qty", "type": "double"},
    {"name": "ask_px", "type": "double"},
    {"name": "ask_qty", "type": "double"},
    {"name": "bid_px_str", "type": "string"},
    {"name": "bid_qty_str", "type": "string"},
    {"name": "ask_px_str", "type": "string"},
    {"name": "ask_qty_str", "type": "string"},
    {"name": "book_check", "type": BOOK_CHECK, "default": "unchecked"},
)
# (prefix = encoded venue + symbol, then one keyword argument per field before book_check)
BEFORE_CHECK = FIELDS[: [f["name"] for f in FIELDS].index("book_check")]
encode_head = record_encoder(BEFORE_CHECK, "encode_book_ticker_head")

LANE = Lane(
    name="book_ticker",
    checks_book=True,
    record="BookTickerRecord",
    fields=FIELDS,
    partition_ts="ts",
    key=("update_id",),
    preference=FIRST_RECEIVED,
    # Not by ts: on spot it is each burst's own receive time, so copies chosen from different
    # bursts could sort out of exchange order.
    order=asc("update_id"),
    description="Best bid/ask updates (<sym>@bookTicker), each compared with the local book.",
    copies_share_ts=False,
    feed="stream",
    stream="@bookTicker",
    parse=book_ticker_record,
    encode=encode_head,
)
