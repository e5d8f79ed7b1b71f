"""snapshots: the REST snapshots books were built from, with reason and request weight.

Written by every burst (not asked for). They carry no receive time and their key includes the
burst: copies of one key are the same record written twice (a salvaged file), identical."""

from __future__ import annotations

from orderbook_pipeline.core.events import parse_snapshot
from orderbook_pipeline.core.records import build_snapshot_record
from orderbook_pipeline.lanes.avro_types import STRING_LEVELS, STRING_LEVELS_AGAIN, TS
from orderbook_pipeline.lanes.spec import Lane, asc

SNAPSHOT_REASONS = ("bootstrap", "gap", "reconnect", "verify", "reseed", "book_mismatch")

LANE = Lane(
    name="snapshots",
    record="SnapshotRecord",
    fields=(
        {"name": "last_update_id", "type": "long"},
        {"name": "request_ts", "type": TS},
        {"name": "response_ts", "type": TS},
        {"name": "limit", "type": "int"},
        {"name": "used_weight_1m", "type": ["null", "int"], "default": None},
        {"name": "bids", "type": STRING_LEVELS},
        {"name": "asks", "type": STRING_LEVELS_AGAIN},
        {
            "name": "reason",
            "type": {"type": "enum", "name": "SnapshotReason", "symbols": list(SNAPSHOT_REASONS)},
        },
    ),
    partition_ts="response_ts",
    key=("burst_id", "last_update_id", "request_ts"),
    preference=asc("response_ts"),
    order=asc("response_ts", "last_update_id"),
    description="The REST snapshots books were built from, with reason and request weight.",
    parse=parse_snapshot,
    encode=build_snapshot_record,  # a dict, for the bronze writer's fastavro path
)
