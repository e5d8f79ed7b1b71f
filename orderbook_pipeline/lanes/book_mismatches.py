"""book_mismatches: every difference found between the local book and an exchange view of it.

Written by the book verifier (capture/verification.py) whenever a comparison fails, never asked
for; like snapshots.py, no receive time, and the key includes the burst."""

from __future__ import annotations

from orderbook_pipeline.lanes.avro_types import OPT_TS, TS
from orderbook_pipeline.lanes.spec import Lane, LaneCheck, asc

MISMATCH_SOURCES = ("deep_snapshot", "partial_depth", "book_ticker")

LANE = Lane(
    name="book_mismatches",
    record="BookMismatchRecord",
    fields=(
        {
            "name": "source",
            "type": {"type": "enum", "name": "MismatchSource", "symbols": list(MISMATCH_SOURCES)},
        },
        {"name": "update_id", "type": "long"},  # the book state compared (lastUpdateId / u)
        {"name": "detected_ts", "type": TS},
        {"name": "compared_levels", "type": "int"},
        # The last state this burst verified as equal (deep snapshot, or the bootstrap
        # snapshot): the book may have been wrong anywhere after it.
        {"name": "last_verified_update_id", "type": ["null", "long"], "default": None},
        {"name": "last_verified_ts", "type": OPT_TS, "default": None},
        {
            "name": "differences",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "LevelDifference",
                    "fields": [
                        {
                            "name": "side",
                            "type": {"type": "enum", "name": "DiffSide", "symbols": ["bid", "ask"]},
                        },
                        {"name": "px", "type": "double"},
                        {"name": "local_qty", "type": ["null", "double"], "default": None},
                        {"name": "exchange_qty", "type": ["null", "double"], "default": None},
                    ],
                },
            },
        },
    ),
    partition_ts="detected_ts",
    key=("burst_id", "source", "update_id"),
    preference=asc("detected_ts"),
    order=asc("detected_ts", "update_id"),
    description="Every difference found between the local book and an exchange view of it.",
    checks=(
        LaneCheck(
            "book_verified",
            "The local book matched every view the exchange gave of it in the hour: deep "
            "snapshots, partial depth, bookTicker. A mismatch starts a reseed.",
            reseeds=True,
        ),
    ),
)
