"""partial_depth: top-N partial depth (<sym>@depth<N>@100ms), each compared with the local book.

Ten a second per symbol: encoded straight to Avro binary, as book_ticker.py does (fastavro's
dict walk cost ~65 µs for a depth-20 record, most of this lane's cost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orderbook_pipeline.core.avro_record import record_encoder
from orderbook_pipeline.core.lane_frames import FastPartialDepth
from orderbook_pipeline.core.tickers import PartialDepth, parse_partial_depth
from orderbook_pipeline.lanes.avro_types import (
    BOOK_CHECK,
    OPT_LONG,
    OPT_TS,
    STRING_LEVELS,
    STRING_LEVELS_AGAIN,
    TS,
    TS_SOURCE,
)
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, asc

FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "levels", "type": "int"},  # N of <sym>@depth<N>
    {"name": "last_update_id", "type": "long"},
    {"name": "first_update_id", "type": OPT_LONG, "default": None},  # USD-M U
    {"name": "prev_update_id", "type": OPT_LONG, "default": None},  # USD-M pu
    {"name": "ts", "type": TS},
    {"name": "ts_source", "type": TS_SOURCE},
    {"name": "event_ts", "type": OPT_TS, "default": None},
    {"name": "transaction_ts", "type": OPT_TS, "default": None},
    {"name": "ingest_ts", "type": TS},
    {"name": "bids", "type": STRING_LEVELS},
    {"name": "asks", "type": STRING_LEVELS_AGAIN},
    {"name": "book_check", "type": BOOK_CHECK, "default": "unchecked"},
)
# The fields an encoder writes before book_check (stream_lanes.py builds one per core).
BEFORE_CHECK = FIELDS[: [f["name"] for f in FIELDS].index("book_check")]
_encode_fields = record_encoder(BEFORE_CHECK, "encode_partial_depth_fields")


def encode_head(
    prefix: bytes,
    levels: int,
    p: PartialDepth | FastPartialDepth,
    ingest_us: int,
    encode: Callable[..., bytes] | None = None,
) -> bytes:
    """Everything of a record before `book_check` (known once it is compared); prefix =
    encoded venue + symbol. The record is head + BOOK_CHECK_BYTES[verdict] + burst id.
    encode: a record_encoder of BEFORE_CHECK (default: the module's)."""
    exchange_time = p.event_us is not None
    return (encode or _encode_fields)(
        prefix,
        levels,
        p.last_id,
        p.first_id,
        p.prev_id,
        p.event_us if exchange_time else ingest_us,
        "exchange" if exchange_time else "receive",
        p.event_us,
        p.transaction_us,
        ingest_us,
        p.raw_bids,
        p.raw_asks,
    )


LANE = Lane(
    name="partial_depth",
    checks_book=True,
    record="PartialDepthRecord",
    fields=FIELDS,
    partition_ts="ts",
    key=("levels", "last_update_id"),
    preference=FIRST_RECEIVED,
    order=asc("last_update_id", "levels"),
    description="Top-N partial depth (<sym>@depth<N>@100ms), each compared with the local book.",
    copies_share_ts=False,
    feed="stream",
    stream="@depth{levels}@100ms",
    parse=parse_partial_depth,
    encode=encode_head,
)
