"""The bronze lanes as external assets: written by capture bursts, reported by the capture op.

Every lane but klines, which is fetched over REST by an asset of its own (assets/klines.py,
key ["bronze", "klines"]). What one record of each lane is: the lane registry.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import dagster as dg

from orderbook_pipeline.compaction.lanes import LANES
from orderbook_pipeline.partitions import hour_stream, partition_key
from orderbook_pipeline.storage.layout import BRONZE_LANES, partition_of

BRONZE_KEYS = {lane: dg.AssetKey(["bronze", lane]) for lane in BRONZE_LANES}
MATERIALIZED_ELSEWHERE = ("klines",)  # a real asset, not an external spec

bronze_specs = [
    dg.AssetSpec(
        key,
        partitions_def=hour_stream,
        group_name="bronze",
        kinds={"avro"},
        description=f"{LANES[lane].description} Avro, hourly by {LANES[lane].partition_ts}.",
    )
    for lane, key in BRONZE_KEYS.items()
    if lane not in MATERIALIZED_ELSEWHERE
]


def bronze_materializations(
    published: list[str], metadata: dict[str, Any]
) -> list[dg.AssetMaterialization]:
    """One materialization per (lane, hour × stream partition) among the files a burst wrote."""
    files: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in published:
        part = partition_of(rel)
        if part is None or part.lane not in BRONZE_KEYS or part.lane in MATERIALIZED_ELSEWHERE:
            continue
        key = partition_key(part.venue, part.symbol, part.hour_start_us)
        files[(part.lane, str(key))].append(rel)
    return [
        dg.AssetMaterialization(
            asset_key=BRONZE_KEYS[lane],
            partition=key,
            metadata={"files": len(paths), "first_file": paths[0], **metadata},
        )
        for (lane, key), paths in sorted(files.items())
    ]
