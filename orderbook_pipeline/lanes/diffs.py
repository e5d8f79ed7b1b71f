"""diffs: every distinct depth event received, with the exact strings as sent.

Encoded by core/avro_binary.py's encode_diff (hand-tuned, byte-compared with fastavro)."""

from __future__ import annotations

from orderbook_pipeline.core.avro_binary import encode_diff
from orderbook_pipeline.core.events import decode_depth_frame
from orderbook_pipeline.lanes.avro_types import (
    OPT_LONG,
    OPT_TS,
    STRING_LEVELS,
    STRING_LEVELS_AGAIN,
    TS,
)
from orderbook_pipeline.lanes.spec import EVENT_ORDER, FIRST_RECEIVED, Lane

LANE = Lane(
    name="diffs",
    record="DiffRecord",
    fields=(
        {"name": "event_ts", "type": TS},
        {"name": "transaction_ts", "type": OPT_TS, "default": None},
        {"name": "ingest_ts", "type": TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": OPT_LONG, "default": None},
        {"name": "bids", "type": STRING_LEVELS},
        {"name": "asks", "type": STRING_LEVELS_AGAIN},
    ),
    partition_ts="event_ts",
    key=("first_update_id", "last_update_id"),
    preference=FIRST_RECEIVED,
    order=EVENT_ORDER,
    description="Every distinct depth event received, exact strings as sent.",
    feed="book",
    parse=decode_depth_frame,
    encode=encode_diff,
)
