"""l2: fixed-depth L2 records, one per applied diff event per configured depth, while in sync.

Encoded by core/avro_binary.py's L2Encoder (hand-tuned: the capture's hottest path), whose
bytes tests compare with fastavro's encoding of this schema."""

from __future__ import annotations

from orderbook_pipeline.core.avro_binary import L2Encoder
from orderbook_pipeline.core.events import decode_depth_frame
from orderbook_pipeline.lanes.avro_types import OPT_LONG, SIDE, TS
from orderbook_pipeline.lanes.spec import EVENT_ORDER, UNBROKEN_FIRST, Lane, LaneCheck

LANE = Lane(
    name="l2",
    record="L2Record",
    fields=(
        {"name": "event_ts", "type": TS},
        {"name": "ingest_ts", "type": TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": OPT_LONG, "default": None},
        {"name": "depth", "type": "int"},
        {
            "name": "levels",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Level",
                    "fields": [
                        {"name": "side", "type": SIDE},
                        {"name": "px", "type": "double"},
                        {"name": "qty", "type": "double"},
                    ],
                },
            },
        },
        {"name": "mid", "type": "double"},
        {"name": "spread_bps", "type": "double"},
        {"name": "imbalance", "type": "double"},
        {"name": "gap_detected", "type": "boolean", "default": False},
        {"name": "recovered", "type": "boolean", "default": False},
    ),
    partition_ts="event_ts",
    key=("last_update_id",),
    preference=UNBROKEN_FIRST,
    order=EVENT_ORDER,
    description="Fixed-depth L2 records, one per applied diff event per depth, while in sync.",
    per_depth=True,
    feed="book",
    checks=(
        LaneCheck(
            "no_crossed_book",
            "No L2 record has its best bid at or above its best ask (read from the levels).",
        ),
        LaneCheck(
            "silver_reconciles_with_bronze",
            "Silver L2 holds exactly one row per distinct bronze update id, per depth, over the "
            "settled part of the hour (counted apart from the deduplication).",
        ),
    ),
    parse=decode_depth_frame,
    encode=L2Encoder,
)
