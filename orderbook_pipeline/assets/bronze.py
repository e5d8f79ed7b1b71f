"""The bronze lanes as external assets: written by capture bursts, reported by the capture op."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import dagster as dg

from orderbook_pipeline.partitions import hour_stream, partition_key
from orderbook_pipeline.storage.layout import BRONZE_LANES, partition_of

BRONZE_KEYS = {lane: dg.AssetKey(["bronze", lane]) for lane in BRONZE_LANES}

_DESCRIPTIONS = {
    "l2": "Fixed-depth L2 records (Avro), one per applied diff event per depth, while in sync.",
    "diffs": "Every distinct depth event received, exact strings as sent (Avro).",
    "snapshots": "The REST snapshots books were built from, with reason and weight (Avro).",
}

bronze_specs = [
    dg.AssetSpec(
        key,
        partitions_def=hour_stream,
        group_name="bronze",
        kinds={"avro"},
        description=_DESCRIPTIONS[lane],
    )
    for lane, key in BRONZE_KEYS.items()
]


def bronze_materializations(
    published: list[str], metadata: dict[str, Any]
) -> list[dg.AssetMaterialization]:
    """One materialization per (lane, hour × stream partition) among the files a burst wrote."""
    files: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in published:
        part = partition_of(rel)
        if part is None or part.lane not in BRONZE_KEYS:
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
