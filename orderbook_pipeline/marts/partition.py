"""What every mart build shares: the tables, the time basis, and one partition's transaction.

Silver is read through the Store (local or S3) and handed to DuckDB as Arrow relations, so no
DuckDB extension (httpfs) is ever needed. A partition's deletes and inserts run in one
transaction: a failure anywhere leaves the tables as they were, and re-running a partition
replaces its rows (no duplicates; the primary keys would refuse them anyway).

Times go to DuckDB as TIMESTAMP without time zone holding UTC: the Arrow columns are cast from
timestamp[us, UTC] to naive timestamp[us] (same microseconds), and the hour bounds are naive
UTC datetimes, so neither the session's TimeZone setting nor ICU can shift a bucket.

Time basis. Buckets are cut on one clock, `bucket_ts`: the exchange's event time (event_ts,
the default) or the local receive time (ingest_ts). A mart partition (venue, symbol, hour)
owns exactly the buckets whose start lies in its hour, on that clock. Silver is partitioned by
exchange time, so on the receive basis a record of one silver hour may belong to the next (or,
with a clock behind the exchange's, the previous) mart hour: the build reads the silver hours
either side too and keeps the records whose receive time lies in the hour. Each record is thus
bucketed by exactly one partition, and the partition's delete (its buckets) is exact. Records
received more than an hour away from their event time are not bucketed (a clock that wrong is
a broken host). Inside a bucket, records are always ordered by exchange order (event_ts, update
id): first/last and returns follow the book, whichever clock cut the buckets.

One basis per database: the first build records it in table `mart_settings` (a database that
already held mart rows from before the setting existed was built on exchange time); a build on
the other basis is refused rather than mixing clocks in one table. Use another database file
(OBP_DUCKDB_PATH) per basis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_lane
from orderbook_pipeline.marts.gold import MartPartition, publish_partition
from orderbook_pipeline.marts.sql_files import bound_params, fetch_sql_file, run_sql_file
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store

TIME_BASES = {"exchange": "event_ts", "receive": "ingest_ts"}  # basis -> the column it buckets
BUCKET_TS = "bucket_ts"
CREATE_FILES = (
    "create_gap_windows.sql",
    "create_macro_bucket_has_gap.sql",
    "create_mart_l2_5s.sql",
    "create_mart_depth_bands_5s.sql",
    "create_mart_settings.sql",
)
# Every mart reloads the partition's gap windows (its has_gap reads them) in its transaction:
# whichever mart builds first, the windows are current. Deletes come before inserts.
GAP_DELETE, GAP_INSERT = "delete_gap_windows_partition.sql", "insert_gap_windows.sql"
GAPS_RELATION = "partition_gap_windows"


class TimeBasisMismatch(ValueError):
    """The database's marts were built on another clock than the one asked for."""


def naive_utc(us: int) -> datetime:
    """µs since the epoch as a naive datetime in UTC (what a DuckDB TIMESTAMP binds to)."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(
        microsecond=us % 1_000_000, tzinfo=None
    )


def naive_times(table: pa.Table) -> pa.Table:
    """Cast every timestamp column to naive timestamp[us] (same instant, read as UTC)."""
    fields = [
        pa.field(f.name, pa.timestamp("us"), f.nullable) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def partition_params(venue: str, symbol: str, hour_start_us: int) -> dict[str, object]:
    return {
        "venue": venue,
        "symbol": symbol,
        "hour_start": naive_utc(hour_start_us),
        "hour_end": naive_utc(hour_start_us + HOUR_US),
    }


def check_basis(time_basis: str) -> str:
    if time_basis not in TIME_BASES:
        raise ValueError(f"time_basis must be one of {sorted(TIME_BASES)}, got {time_basis!r}")
    return time_basis


def ensure_tables(conn: duckdb.DuckDBPyConnection, time_basis: str = "exchange") -> None:
    """Create the mart tables if needed, and hold the database to one time basis."""
    check_basis(time_basis)
    for name in CREATE_FILES:
        run_sql_file(conn, name, {})
    run_sql_file(conn, "insert_mart_time_basis.sql", {"time_basis": time_basis})
    ((recorded,),) = fetch_sql_file(conn, "select_mart_time_basis.sql", {})
    if recorded != time_basis:
        raise TimeBasisMismatch(
            f"this mart database buckets by {recorded} time, not {time_basis}: use another "
            "database (OBP_DUCKDB_PATH) for the other basis"
        )


def records_of_hour(
    read_hour: Callable[[int], pa.Table], hour_start_us: int, time_basis: str
) -> pa.Table:
    """The silver records the partition buckets, with a `bucket_ts` column (the basis clock).

    read_hour(h): the silver table of hour h, holding event_ts and ingest_ts. Exchange basis:
    this hour's silver. Receive basis: the silver hours either side too, keeping the records
    received in this hour.
    """
    column = TIME_BASES[check_basis(time_basis)]
    if time_basis == "exchange":
        table = read_hour(hour_start_us)
        return table.append_column(BUCKET_TS, table.column(column))
    hours = (hour_start_us - HOUR_US, hour_start_us, hour_start_us + HOUR_US)
    table = pa.concat_tables([read_hour(h) for h in hours])
    ts = table.column(column)
    lo = pa.scalar(hour_start_us, pa.int64()).cast(ts.type)
    hi = pa.scalar(hour_start_us + HOUR_US, pa.int64()).cast(ts.type)
    table = table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
    return table.append_column(BUCKET_TS, table.column(column))


def build_partition(
    conn: duckdb.DuckDBPyConnection,
    relations: Mapping[str, pa.Table],
    files: Sequence[str],
    params: Mapping[str, object],
    count_sql: str,
) -> int:
    """Register `relations` (times made naive), run `files` in one transaction and return
    count_sql's answer (read inside it, so it counts exactly what was committed)."""
    for name, table in relations.items():
        conn.register(name, naive_times(table))
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            for name in files:
                run_sql_file(conn, name, params)
            row = conn.execute(count_sql, bound_params(count_sql, params)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            # Undo everything of this partition; a failing ROLLBACK must not hide the cause.
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise
    finally:
        for name in relations:
            with contextlib.suppress(duckdb.Error):
                conn.unregister(name)
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Mart:
    """A 5-second mart built per partition from one silver lane.

    Its SQL: `create_{table}.sql`, `delete_{table}_partition.sql` (the hour's buckets),
    `select_{table}_partition.sql` (its gold Parquet file's rows) and
    `insert_{table}.sql`, which reads `relation` (the lane's `columns` plus `bucket_ts`, the
    records the partition buckets) and the gap_windows table.
    """

    table: str
    lane: str
    relation: str
    columns: tuple[str, ...]

    def build(
        self,
        conn: duckdb.DuckDBPyConnection,
        store: Store,
        venue: str,
        symbol: str,
        hour_start_us: int,
        time_basis: str = "exchange",
        ensured: bool = False,
    ) -> int:
        """The partition rebuilt and published (see `publish`); its mart rows."""
        return self.publish(conn, store, venue, symbol, hour_start_us, time_basis, ensured).rows

    def publish(
        self,
        conn: duckdb.DuckDBPyConnection,
        store: Store,
        venue: str,
        symbol: str,
        hour_start_us: int,
        time_basis: str = "exchange",
        ensured: bool = False,
    ) -> MartPartition:
        """(Re)build the partition's rows of `gap_windows` and of this mart, and publish them
        as the partition's gold Parquet file (marts/gold.py). `ensured`: the caller ran
        ensure_tables on `conn` already."""
        if not ensured:
            ensure_tables(conn, time_basis)
        columns = list(dict.fromkeys([*self.columns, TIME_BASES[time_basis]]))
        records = records_of_hour(
            lambda h: read_silver_lane(store, self.lane, venue, symbol, h, columns),
            hour_start_us,
            time_basis,
        )
        relations = {
            self.relation: records,
            GAPS_RELATION: read_gap_windows(store, venue, symbol, hour_start_us),
        }
        # Deletes before inserts: the mart's has_gap reads the freshly loaded gap windows.
        files = (
            GAP_DELETE,
            f"delete_{self.table}_partition.sql",
            GAP_INSERT,
            f"insert_{self.table}.sql",
        )
        count = (
            f"SELECT count(*) FROM {self.table} WHERE venue = $venue AND symbol = $symbol"
            " AND bucket_start >= $hour_start AND bucket_start < $hour_end"
        )
        params = partition_params(venue, symbol, hour_start_us)
        rows = build_partition(conn, relations, files, params, count)
        published = publish_partition(conn, store, self.table, params, hour_start_us)
        if published.rows != rows:  # both read what was committed: they can only agree
            raise RuntimeError(f"{self.table}: {rows} rows committed, {published.rows} published")
        return published
