"""Gold: the DuckDB 5-second marts, rebuilt per partition (delete + insert), so backfills and
re-runs never duplicate rows. Every DuckDB writer shares the `duckdb` pool (size 1).

Buckets are cut on the clock `capture_target.time_basis` names ("exchange": event time, the
default; "receive": local receive time); one basis per database (marts/partition.py).
"""

import dagster as dg

from orderbook_pipeline.assets.automation import AFTER_NEW_BRONZE
from orderbook_pipeline.assets.silver import GAP_WINDOWS, SILVER_L2, silver_key
from orderbook_pipeline.marts.depth_bands_5s import DEPTH_BANDS_5S
from orderbook_pipeline.marts.l2_5s import L2_5S
from orderbook_pipeline.marts.partition import Mart
from orderbook_pipeline.partitions import hour_stream, split_partition_key
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB

MART_L2_5S = dg.AssetKey(["gold", "mart_l2_5s"])
MART_DEPTH_BANDS_5S = dg.AssetKey(["gold", "mart_depth_bands_5s"])
DUCKDB_POOL = "duckdb"


def _build(
    mart: Mart, partition_key: str, capture_target: CaptureTarget, mart_db: MartDuckDB
) -> dg.MaterializeResult:
    venue, symbol, hour = split_partition_key(partition_key)
    basis = capture_target.time_basis
    with mart_db.get_connection() as conn:
        rows = mart.build(conn, capture_target.store(), venue, symbol, hour, basis)
    return dg.MaterializeResult(
        metadata={"rows": rows, "database": mart_db.database, "time_basis": basis}
    )


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
    return _build(L2_5S, context.partition_key, capture_target, mart_db)


@dg.asset(  # type: ignore[misc]
    key=MART_DEPTH_BANDS_5S,
    deps=[silver_key("depth_bands"), GAP_WINDOWS],
    partitions_def=hour_stream,
    automation_condition=AFTER_NEW_BRONZE,
    pool=DUCKDB_POOL,
    group_name="gold",
    kinds={"duckdb"},
    description="5-second buckets of bid/ask quantity and notional within percent bands of "
    "mid: mean and last per band.",
)
def mart_depth_bands_5s(
    context: dg.AssetExecutionContext, capture_target: CaptureTarget, mart_db: MartDuckDB
) -> dg.MaterializeResult:
    return _build(DEPTH_BANDS_5S, context.partition_key, capture_target, mart_db)
