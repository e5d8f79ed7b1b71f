"""Silver: each hour's bronze compacted into Parquet, deduplicated across overlapping bursts, and
the hour's gap windows. Hour × stream partitioned; re-running a partition rewrites the same data.

One asset per lane, all made by `silver_lane_asset` from the lane registry (compaction/lanes.py)
except L2, which is compacted per depth.
"""

import dagster as dg

from orderbook_pipeline.assets.automation import AFTER_NEW_BRONZE
from orderbook_pipeline.assets.bronze import BRONZE_KEYS
from orderbook_pipeline.compaction.gaps import derive_gap_windows, write_gap_windows
from orderbook_pipeline.compaction.lanes import LANES
from orderbook_pipeline.compaction.silver import compact_l2, compact_lane
from orderbook_pipeline.partitions import hour_stream, split_partition_key
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.storage.reader import earliest_hour
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import get_venue

SILVER_L2 = dg.AssetKey(["silver", "l2"])
GAP_WINDOWS = dg.AssetKey(["silver", "gap_windows"])


def silver_key(lane: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", lane])


def stream_began_in(store: Store, venue: str, symbol: str, hour_start_us: int) -> bool:
    """Is this the stream's first captured hour? Its time before capture began is no loss."""
    return earliest_hour(store, "l2", venue, symbol) == hour_start_us


@dg.asset(  # type: ignore[misc]
    key=SILVER_L2,
    deps=[BRONZE_KEYS["l2"]],
    partitions_def=hour_stream,
    automation_condition=AFTER_NEW_BRONZE,
    group_name="silver",
    kinds={"parquet"},
    description="L2 records of the hour, one per update id per depth across bursts, zstd Parquet.",
)
def silver_l2(
    context: dg.AssetExecutionContext, capture_target: CaptureTarget
) -> dg.MaterializeResult:
    venue, symbol, hour = split_partition_key(context.partition_key)
    results = compact_l2(capture_target.store(), venue, symbol, hour)
    rows_in = sum(r.rows_in for r in results.values())
    rows_out = sum(r.rows_out for r in results.values())
    return dg.MaterializeResult(
        metadata={
            "rows": rows_out,
            "duplicates_removed": rows_in - rows_out,
            "depths": sorted(results),
            "bronze_files": sum(r.files_in for r in results.values()),
            "bursts": sorted({b for r in results.values() for b in r.bursts}),
        }
    )


def silver_lane_asset(lane: str) -> dg.AssetsDefinition:
    """The silver asset of one lane (any but l2): key ["silver", lane], fed by ["bronze", lane]."""
    spec = LANES[lane]
    key_text = ", ".join(spec.key)

    @dg.asset(  # type: ignore[misc]
        key=silver_key(lane),
        deps=[BRONZE_KEYS[lane]],
        partitions_def=hour_stream,
        automation_condition=AFTER_NEW_BRONZE,
        group_name="silver",
        kinds={"parquet"},
        description=f"{spec.description} One row per ({key_text}) across bursts, zstd Parquet.",
    )
    def _silver(
        context: dg.AssetExecutionContext, capture_target: CaptureTarget
    ) -> dg.MaterializeResult:
        venue, symbol, hour = split_partition_key(context.partition_key)
        result = compact_lane(capture_target.store(), lane, venue, symbol, hour)
        rows_in, rows_out = (result.rows_in, result.rows_out) if result else (0, 0)
        return dg.MaterializeResult(
            metadata={
                "rows": rows_out,
                "duplicates_removed": rows_in - rows_out,
                "bronze_files": result.files_in if result else 0,
                "bursts": result.bursts if result else [],
            }
        )

    return _silver


SILVER_LANE_ASSETS = {lane: silver_lane_asset(lane) for lane in LANES if not LANES[lane].per_depth}
silver_diffs = SILVER_LANE_ASSETS["diffs"]
SILVER_DIFFS = silver_key("diffs")


@dg.asset(  # type: ignore[misc]
    key=GAP_WINDOWS,
    deps=[SILVER_L2, SILVER_DIFFS, BRONZE_KEYS["snapshots"], BRONZE_KEYS["book_mismatches"]],
    partitions_def=hour_stream,
    automation_condition=AFTER_NEW_BRONZE,
    group_name="silver",
    kinds={"parquet"},
    description="Every loss of book continuity in the hour, with update ids, times and cause.",
)
def gap_windows(
    context: dg.AssetExecutionContext, capture_target: CaptureTarget
) -> dg.MaterializeResult:
    venue, symbol, hour = split_partition_key(context.partition_key)
    store = capture_target.store()
    table = derive_gap_windows(
        store,
        venue,
        symbol,
        hour,
        get_venue(venue).sync_rule,
        stream_began_this_hour=stream_began_in(store, venue, symbol, hour),
    )
    path = write_gap_windows(store, table, venue, symbol, hour)
    causes = table.column("cause").to_pylist() if table.num_rows else []
    return dg.MaterializeResult(
        metadata={
            "gaps": table.num_rows,
            "causes": {c: causes.count(c) for c in sorted(set(causes))},
            "path": store.uri(path),
        }
    )
