"""Avro schemas of the three bronze lanes: the public record contracts of design.md.

Times are microseconds since the epoch with the logical type inside the type, so readers that
honour logical types see timestamps and the rest see plain longs.
"""

from __future__ import annotations

from typing import Any

import fastavro

_TS = {"type": "long", "logicalType": "timestamp-micros"}
_OPT_TS = ["null", _TS]

_STRING_LEVEL = {
    "type": "record",
    "name": "StringLevel",
    "fields": [{"name": "px", "type": "string"}, {"name": "qty", "type": "string"}],
}

L2_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "L2Record",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "ingest_ts", "type": _TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": ["null", "long"], "default": None},
        {"name": "depth", "type": "int"},
        {
            "name": "levels",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Level",
                    "fields": [
                        {
                            "name": "side",
                            "type": {"type": "enum", "name": "Side", "symbols": ["bid", "ask"]},
                        },
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
        {"name": "burst_id", "type": "string"},
    ],
}

DIFF_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "DiffRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "event_ts", "type": _TS},
        {"name": "transaction_ts", "type": _OPT_TS, "default": None},
        {"name": "ingest_ts", "type": _TS},
        {"name": "first_update_id", "type": "long"},
        {"name": "last_update_id", "type": "long"},
        {"name": "prev_update_id", "type": ["null", "long"], "default": None},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {"name": "burst_id", "type": "string"},
    ],
}

SNAPSHOT_REASONS = ("bootstrap", "gap", "reconnect", "verify", "reseed")

SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SnapshotRecord",
    "namespace": "orderbook_pipeline",
    "fields": [
        {"name": "venue", "type": "string"},
        {"name": "symbol", "type": "string"},
        {"name": "last_update_id", "type": "long"},
        {"name": "request_ts", "type": _TS},
        {"name": "response_ts", "type": _TS},
        {"name": "limit", "type": "int"},
        {"name": "used_weight_1m", "type": ["null", "int"], "default": None},
        {"name": "bids", "type": {"type": "array", "items": _STRING_LEVEL}},
        {"name": "asks", "type": {"type": "array", "items": "StringLevel"}},
        {
            "name": "reason",
            "type": {"type": "enum", "name": "SnapshotReason", "symbols": list(SNAPSHOT_REASONS)},
        },
        {"name": "burst_id", "type": "string"},
    ],
}

LANE_SCHEMAS: dict[str, dict[str, Any]] = {
    "l2": L2_SCHEMA,
    "diffs": DIFF_SCHEMA,
    "snapshots": SNAPSHOT_SCHEMA,
}

PARSED_SCHEMAS: dict[str, Any] = {
    lane: fastavro.parse_schema(s) for lane, s in LANE_SCHEMAS.items()
}
