"""The bronze lanes as external assets: written by capture bursts, which report them per lane
and hour (capture/reporter.py), and once more by the final refresh of each hour.

Every lane but those with an asset of their own (klines: fetched over REST, assets/klines.py).
What one record of each lane is: the lane registry (lanes/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.keys import bronze_key
from orderbook_pipeline.capture.reporter import Batch
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.partitions import hour_key

# Lanes with a real asset of their own (klines), not an external spec.
MATERIALIZED_ELSEWHERE = tuple(name for name, spec in LANES.items() if spec.own_asset)


def bronze_specs(lanes: Iterable[str], partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            bronze_key(lane),
            partitions_def=partitions,
            group_name="bronze",
            kinds={"avro"},
            description=f"{LANES[lane].description} Avro, hourly by {LANES[lane].partition_ts}, "
            "one directory per venue and symbol.",
        )
        for lane in lanes
        if lane not in MATERIALIZED_ELSEWHERE
    ]


def bronze_materializations(
    batches: Iterable[Batch], metrics_fields: tuple[str, ...] = ()
) -> list[dg.AssetMaterialization]:
    """One materialization per batch (a lane and hour of one burst's newly published files)."""
    out = []
    for b in batches:
        if b.lane in MATERIALIZED_ELSEWHERE or b.lane not in LANES:
            continue
        metadata: dict[str, Any] = {
            "venue": b.venue,
            "files": len(b.files),
            "streams": len(b.symbols),
            "hour_closed": b.final,
            **{k: v for k, v in b.metrics.items() if not metrics_fields or k in metrics_fields},
        }
        out.append(
            dg.AssetMaterialization(
                asset_key=bronze_key(b.lane), partition=hour_key(b.hour_start_us), metadata=metadata
            )
        )
    return out


def lake_materialization(
    lane: str, hour: str, metadata: Mapping[str, Any]
) -> dg.AssetMaterialization:
    """The final refresh's record of an hour's bronze of one lane, as found in the lake (it
    outlives the capture runs, which retention deletes)."""
    return dg.AssetMaterialization(
        asset_key=bronze_key(lane), partition=hour, metadata={"reported_by": "refresh", **metadata}
    )
