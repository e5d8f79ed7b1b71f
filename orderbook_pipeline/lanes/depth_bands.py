"""depth_bands: bid/ask quantity and notional within percent bands of mid, from the local book
(core/bands.py), sampled at most once per band interval. Records go through the bronze writer's
fastavro path."""

from __future__ import annotations

from orderbook_pipeline.core.bands import compute_bands
from orderbook_pipeline.lanes.avro_types import TS
from orderbook_pipeline.lanes.spec import EVENT_ORDER, UNBROKEN_FIRST, Lane

DEFAULT_BAND_PCTS = (0.01, 0.05, 0.1, 0.5, 1.0)

LANE = Lane(
    name="depth_bands",
    record="DepthBandsRecord",
    fields=(
        {"name": "event_ts", "type": TS},
        {"name": "ingest_ts", "type": TS},
        {"name": "last_update_id", "type": "long"},
        {"name": "mid", "type": "double"},
        {
            "name": "bands",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Band",
                    "fields": [
                        # Levels with price within pct % of mid: bids >= mid*(1-pct/100),
                        # asks <= mid*(1+pct/100).
                        {"name": "pct", "type": "double"},
                        {"name": "bid_qty", "type": "double"},
                        {"name": "ask_qty", "type": "double"},
                        {"name": "bid_notional", "type": "double"},  # sum of px * qty
                        {"name": "ask_notional", "type": "double"},
                        # False when the band reaches past the levels the book is known to
                        # hold exactly (beyond the snapshot's depth): its sums are then a floor.
                        {"name": "complete", "type": "boolean"},
                    ],
                },
            },
        },
        {"name": "gap_detected", "type": "boolean", "default": False},
        {"name": "recovered", "type": "boolean", "default": False},
    ),
    partition_ts="event_ts",
    key=("last_update_id",),
    preference=UNBROKEN_FIRST,
    order=EVENT_ORDER,
    description="Bid/ask quantity and notional within percent bands of mid, from the local book.",
    feed="book",
    parse=compute_bands,
)
