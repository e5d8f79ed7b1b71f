"""deep_snapshots: periodic deep REST snapshots, each compared with the local book.

Like snapshots.py: no receive time, and the key includes the burst."""

from __future__ import annotations

from orderbook_pipeline.core.events import parse_snapshot
from orderbook_pipeline.lanes import snapshots
from orderbook_pipeline.lanes.spec import Lane

VERIFY_RESULTS = ("match", "mismatch", "not_compared")

LANE = Lane(
    name="deep_snapshots",
    checks_book=True,
    record="DeepSnapshotRecord",
    fields=(
        *snapshots.SNAPSHOT_FIELDS,
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
    key=snapshots.LANE.key,
    preference=snapshots.LANE.preference,
    order=snapshots.LANE.order,
    description="Periodic deep REST snapshots, each compared with the local book (verify_result).",
    feed="rest",
    parse=parse_snapshot,
)
