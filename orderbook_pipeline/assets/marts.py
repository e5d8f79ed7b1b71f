"""Gold: the DuckDB 5-second mart, rebuilt per partition (delete + insert), so backfills and
re-runs never duplicate rows. Every DuckDB writer shares the `duckdb` pool (size 1)."""

import dagster as dg

from orderbook_pipeline.assets.automation import AFTER_NEW_BRONZE
from orderbook_pipeline.assets.silver import GAP_WINDOWS, SILVER_L2
from orderbook_pipeline.marts.l2_5s import build_mart_partition
from orderbook_pipeline.partitions import hour_stream, split_partition_key
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB

MART_L2_5S = dg.AssetKey(["gold", "mart_l2_5s"])
DUCKDB_POOL = "duckdb"


@dg.asset(  # type: ignore[misc]
    key=MART_L2_5S,
    deps=[SILVER_L2, GAP_WINDOWS],
    partitions_def=hour_stream,
    automation_condition=AFTER_NEW_BRONZE,
    pool=DUCKDB_POOL,
    group_name="gold",
    kinds={"duckdb"},
    description="5-second buckets of mid, return, realized volatility, spread and imbalance.",
)
def mart_l2_5s(
    context: dg.AssetExecutionContext, capture_target: CaptureTarget, mart_db: MartDuckDB
) -> dg.MaterializeResult:
    venue, symbol, hour = split_partition_key(context.partition_key)
    with mart_db.get_connection() as conn:
        rows = build_mart_partition(conn, capture_target.store(), venue, symbol, hour)
    return dg.MaterializeResult(metadata={"rows": rows, "database": mart_db.database})
