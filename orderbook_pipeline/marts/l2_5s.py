"""Build one hourly stream partition of the DuckDB 5-second L2 mart (and its gap windows).

How partitions, transactions, times and the time basis work: marts/partition.py.
"""

from __future__ import annotations

from orderbook_pipeline.marts.partition import Mart, ensure_tables, naive_utc

__all__ = ["L2_5S", "build_mart_partition", "ensure_tables", "naive_utc"]

L2_5S = Mart(
    table="mart_l2_5s",
    lane="l2",  # every depth
    relation="partition_l2",
    columns=(
        "venue",
        "symbol",
        "depth",
        "event_ts",
        "last_update_id",
        "mid",
        "spread_bps",
        "imbalance",
        "gap_detected",
    ),
)

build_mart_partition = L2_5S.build
