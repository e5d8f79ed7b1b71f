"""Snapshot lane records as dicts (written by fastavro: snapshots are rare).

The per-event L2 and diff records are encoded straight to Avro binary by avro_binary.py.
"""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.core.events import RawLevels


def string_levels(raw: RawLevels) -> list[dict[str, str]]:
    return [{"px": lvl[0], "qty": lvl[1]} for lvl in raw]


def build_snapshot_record(
    venue: str,
    symbol: str,
    last_update_id: int,
    raw_bids: RawLevels,
    raw_asks: RawLevels,
    request_us: int,
    response_us: int,
    limit: int,
    used_weight_1m: int | None,
    reason: str,
    burst_id: str,
) -> dict[str, Any]:
    return {
        "venue": venue,
        "symbol": symbol,
        "last_update_id": last_update_id,
        "request_ts": request_us,
        "response_ts": response_us,
        "limit": limit,
        "used_weight_1m": used_weight_1m,
        "bids": string_levels(raw_bids),
        "asks": string_levels(raw_asks),
        "reason": reason,
        "burst_id": burst_id,
    }
