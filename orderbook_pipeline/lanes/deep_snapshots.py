"""deep_snapshots: periodic deep REST snapshots, each compared with the local book.

Like snapshots.py: no receive time, and the key includes the burst."""

from __future__ import annotations

from orderbook_pipeline.core.events import parse_snapshot
from orderbook_pipeline.lanes.avro_types import STRING_LEVELS, STRING_LEVELS_AGAIN, TS
from orderbook_pipeline.lanes.spec import Lane, asc

VERIFY_RESULTS = ("match", "mismatch", "not_compared")

LANE = Lane(
    name="deep_snapshots",
    record="DeepSnapshotRecord",
    fields=(
        {"name": "last_update_id", "type": "long"},
        {"name": "request_ts", "type": TS},
        {"name": "response_ts", "type": TS},
        {"name": "limit", "type": "int"},
        {"name": "used_weight_1m", "type": ["null", "int"], "default": None},
        {"name": "bids", "type": STRING_LEVELS},
        {"name": "asks", "type": STRING_LEVELS_AGAIN},
        {
            "name": "verify_result",
            "type": {"type": "enum", "name": "VerifyResult", "symbols": list(VERIFY_RESULTS)},
        },
        # Why it was not compared (book not in sync, snapshot older than the book, ...).
        {"name": "verify_note", "type": ["null", "string"], "default": None},
        {"name": "compared_levels", "type": "int", "default": 0},
        {"name": "mismatched_levels", "type": "int", "default": 0},
    ),
    partition_ts="response_ts",
    key=("burst_id", "last_update_id", "request_ts"),
    preference=asc("response_ts"),
    order=asc("response_ts", "last_update_id"),
    description="Periodic deep REST snapshots, each compared with the local book (verify_result).",
    feed="rest",
    parse=parse_snapshot,
)
