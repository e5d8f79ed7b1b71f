"""Build one hourly stream partition of the DuckDB 5-second mart (and its gap windows).

Silver is read through the Store (local or S3) and handed to DuckDB as Arrow relations, so no
DuckDB extension (httpfs) is ever needed. The delete and the inserts run in one transaction: a
failure anywhere leaves the tables as they were, and re-running a partition replaces its rows
(no duplicates; the primary key would refuse them anyway).

Times go to DuckDB as TIMESTAMP without time zone holding UTC: the Arrow columns are cast from
timestamp[us, UTC] to naive timestamp[us] (same microseconds), and the hour bounds are naive
UTC datetimes, so neither the session's TimeZone setting nor ICU can shift a bucket.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_l2
from orderbook_pipeline.marts.sql_files import run_sql_file
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store

L2_RELATION = "partition_l2"
GAPS_RELATION = "partition_gap_windows"
CREATE_FILES = ("create_gap_windows.sql", "create_mart_l2_5s.sql")
# Deletes before inserts: the mart's has_gap reads the freshly loaded gap_windows rows.
BUILD_FILES = (
    "delete_gap_windows_partition.sql",
    "delete_mart_l2_5s_partition.sql",
    "insert_gap_windows.sql",
    "insert_mart_l2_5s.sql",
)
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


def naive_utc(us: int) -> datetime:
    """µs since the epoch as a naive datetime in UTC (what a DuckDB TIMESTAMP binds to)."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(
        microsecond=us % 1_000_000, tzinfo=None
    )


def _naive_times(table: pa.Table) -> pa.Table:
    """Cast every timestamp column to naive timestamp[us] (same instant, read as UTC)."""
    fields = [
        pa.field(f.name, pa.timestamp("us"), f.nullable) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for name in CREATE_FILES:
        run_sql_file(conn, name, {})


def partition_params(venue: str, symbol: str, hour_start_us: int) -> dict[str, object]:
    return {
        "venue": venue,
        "symbol": symbol,
        "hour_start": naive_utc(hour_start_us),
        "hour_end": naive_utc(hour_start_us + HOUR_US),
    }


def build_mart_partition(
    conn: duckdb.DuckDBPyConnection, store: Store, venue: str, symbol: str, hour_start_us: int
) -> int:
    """(Re)build the partition's rows of `gap_windows` and `mart_l2_5s`; return the mart rows."""
    ensure_tables(conn)
    l2 = read_silver_l2(store, venue, symbol, hour_start_us, columns=_L2_COLUMNS)
    gaps = read_gap_windows(store, venue, symbol, hour_start_us)
    params = partition_params(venue, symbol, hour_start_us)
    conn.register(L2_RELATION, _naive_times(l2))
    conn.register(GAPS_RELATION, _naive_times(gaps))
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            for name in BUILD_FILES:
                run_sql_file(conn, name, params)
            row = conn.execute(_COUNT, params).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            # Undo everything of this partition; a failing ROLLBACK must not hide the cause.
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise
    finally:
        for name in (L2_RELATION, GAPS_RELATION):
            with contextlib.suppress(duckdb.Error):
                conn.unregister(name)
    return int(row[0]) if row else 0
