"""Build one hourly stream partition of the DuckDB 5-second L2 mart (and its gap windows).

How partitions, transactions, times and the time basis work: marts/partition.py.
"""

from __future__ import annotations

import duckdb

from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_l2
from orderbook_pipeline.marts.partition import (
    GAP_DELETE,
    GAP_INSERT,
    GAPS_RELATION,
    TIME_BASES,
    build_partition,
    ensure_tables,
    naive_utc,
    partition_params,
    records_of_hour,
)
from orderbook_pipeline.storage.store import Store

__all__ = ["build_mart_partition", "ensure_tables", "naive_utc"]

L2_RELATION = "partition_l2"
# Deletes before inserts: the mart's has_gap reads the freshly loaded gap_windows rows.
BUILD_FILES = (GAP_DELETE, "delete_mart_l2_5s_partition.sql", GAP_INSERT, "insert_mart_l2_5s.sql")
_L2_COLUMNS = (
    "venue",
    "symbol",
    "depth",
    "event_ts",
    "last_update_id",
    "mid",
    "spread_bps",
    "imbalance",
    "gap_detected",
)
_COUNT = (
    "SELECT count(*) FROM mart_l2_5s WHERE venue = $venue AND symbol = $symbol"
    " AND bucket_start >= $hour_start AND bucket_start < $hour_end"
)


def build_mart_partition(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    time_basis: str = "exchange",
) -> int:
    """(Re)build the partition's rows of `gap_windows` and `mart_l2_5s`; return the mart rows."""
    ensure_tables(conn, time_basis)
    columns = list(dict.fromkeys([*_L2_COLUMNS, TIME_BASES[time_basis]]))
    l2 = records_of_hour(
        lambda h: read_silver_l2(store, venue, symbol, h, columns=columns),
        hour_start_us,
        time_basis,
    )
    relations = {
        L2_RELATION: l2,
        GAPS_RELATION: read_gap_windows(store, venue, symbol, hour_start_us),
    }
    params = partition_params(venue, symbol, hour_start_us)
    return build_partition(conn, relations, BUILD_FILES, params, _COUNT)
