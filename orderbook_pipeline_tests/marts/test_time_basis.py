"""Marts bucketed by exchange time or by receive time: each record in exactly one partition,
exact deletes across the hour boundary, one basis per database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from orderbook_pipeline.compaction.silver import compact_l2, compact_lane
from orderbook_pipeline.marts import TimeBasisMismatch, build_depth_bands_partition
from orderbook_pipeline.marts.l2_5s import build_mart_partition, naive_utc
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    depth_bands_record,
    tape,
    write_gap_window,
)

MS = 1000
H2 = H1 + HOUR_US


def late_and_early(store: Store) -> tuple[list[Any], list[Any]]:
    """BTCUSDT: events H1 - 2 s .. H1 + 0.9 s received 1.5 s late (the last 25 in hour H1 by
    receive time). ETHUSDT: events H1 + 0.1 s .. H1 + 2 s received 0.5 s early (a local clock
    behind the exchange's: the first 4 in hour T0 by receive time)."""
    late = tape(30, t0=H1 - 2 * SECOND)
    early = tape(20, t0=H1 + 100 * MS)
    BurstBuilder("a", depths=(10,), ingest_lag_us=1500 * MS).received(late).write(store)
    eth = BurstBuilder("e", symbol="ETHUSDT", depths=(10,), ingest_lag_us=-500 * MS)
    eth.received(early).write(store)
    for symbol in (SYMBOL, "ETHUSDT"):
        for hour in (T0, H1):
            compact_l2(store, VENUE, symbol, hour)
    return late, early


def buckets(conn: duckdb.DuckDBPyConnection, symbol: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT bucket_start, n_updates, mid_open, mid_close FROM mart_l2_5s"
        " WHERE symbol = $symbol ORDER BY bucket_start",
        {"symbol": symbol},
    ).fetchall()


def build_all(conn: duckdb.DuckDBPyConnection, store: Store, basis: str, order: list[int]) -> None:
    for hour in order:
        for symbol in (SYMBOL, "ETHUSDT"):
            build_mart_partition(conn, store, VENUE, symbol, hour, time_basis=basis)


def test_exchange_basis_buckets_by_event_time(
    store: Store, conn: duckdb.DuckDBPyConnection
) -> None:
    late, _ = late_and_early(store)
    build_all(conn, store, "exchange", [T0, H1, H2])
    assert buckets(conn, SYMBOL) == [
        (naive_utc(H1 - 5 * SECOND), 20, late[0].mid, late[19].mid),
        (naive_utc(H1), 10, late[20].mid, late[29].mid),
    ]


@pytest.mark.parametrize("order", [[T0, H1, H2], [H2, H1, T0]])
def test_receive_basis_moves_records_across_the_hour_exactly_once(
    store: Store, conn: duckdb.DuckDBPyConnection, order: list[int]
) -> None:
    late, early = late_and_early(store)
    build_all(conn, store, "receive", order)
    # Received by H1 - 0.1 s: events H1 - 2 s .. H1 - 1.6 s. Then received in the hour H1,
    # among them 20 records of silver hour T0 (events before H1).
    assert buckets(conn, SYMBOL) == [
        (naive_utc(H1 - 5 * SECOND), 5, late[0].mid, late[4].mid),
        (naive_utc(H1), 25, late[5].mid, late[29].mid),
    ]
    # Received before their event time: the first 4 events (H1 + 0.1 .. 0.4 s) in hour T0,
    # read from silver hour H1; ordered by exchange time inside each bucket.
    assert buckets(conn, "ETHUSDT") == [
        (naive_utc(H1 - 5 * SECOND), 4, early[0].mid, early[3].mid),
        (naive_utc(H1), 16, early[4].mid, early[19].mid),
    ]
    before = buckets(conn, SYMBOL)
    build_mart_partition(conn, store, VENUE, SYMBOL, T0, time_basis="receive")
    build_mart_partition(conn, store, VENUE, SYMBOL, H1, time_basis="receive")
    assert buckets(conn, SYMBOL) == before


def test_receive_basis_for_depth_bands(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    samples = [
        depth_bands_record(i, H1 - 3 * SECOND + i * SECOND, ingest_lag_us=2500 * MS)
        for i in range(4)
    ]
    BurstBuilder("a").add("depth_bands", *samples).write(store)
    for hour in (T0, H1):
        compact_lane(store, "depth_bands", VENUE, SYMBOL, hour)
    counts = [
        build_depth_bands_partition(conn, store, VENUE, SYMBOL, h, time_basis="receive")
        for h in (T0, H1)
    ]
    rows = conn.execute(
        "SELECT bucket_start, n_samples FROM mart_depth_bands_5s ORDER BY bucket_start"
    ).fetchall()
    # Events at H1 - 3, -2, -1, 0 s received 2.5 s later: H1 - 0.5 s, then H1 + 0.5 .. 2.5 s.
    assert counts == [1, 1]
    assert rows == [(naive_utc(H1 - 5 * SECOND), 1), (naive_utc(H1), 3)]


def test_one_basis_per_database(store: Store, tmp_path: Path) -> None:
    late_and_early(store)
    db = str(tmp_path / "marts.duckdb")
    with duckdb.connect(db) as conn:
        build_mart_partition(conn, store, VENUE, SYMBOL, T0, time_basis="receive")
        with pytest.raises(TimeBasisMismatch, match="receive"):
            build_mart_partition(conn, store, VENUE, SYMBOL, T0, time_basis="exchange")
        with pytest.raises(ValueError, match="time_basis"):
            build_mart_partition(conn, store, VENUE, SYMBOL, T0, time_basis="local")
    # A database built before the setting existed (mart rows, no mart_settings): exchange.
    old = str(tmp_path / "old.duckdb")
    with duckdb.connect(old) as conn:
        build_mart_partition(conn, store, VENUE, SYMBOL, T0)
        conn.execute("DROP TABLE mart_settings")
        with pytest.raises(TimeBasisMismatch, match="exchange"):
            build_mart_partition(conn, store, VENUE, SYMBOL, T0, time_basis="receive")
        assert conn.execute("SELECT value FROM mart_settings").fetchall() == [("exchange",)]


@pytest.mark.parametrize(
    ("from_ms", "to_ms", "flags"),
    [(1900, 1700, [True, False]), (1400, 1300, [True, True])],
)
def test_receive_buckets_meet_gap_windows_by_their_records_exchange_times(
    store: Store, conn: duckdb.DuckDBPyConnection, from_ms: int, to_ms: int, flags: list[bool]
) -> None:
    """Gap windows are in exchange time. The receive bucket H1 - 5 s holds events H1 - 2 s ..
    H1 - 1.6 s, the bucket H1 events from H1 - 1.5 s on. A window at H1 - 1.9 .. 1.7 s meets
    only the first; one at H1 - 1.4 .. 1.3 s meets both: the second by its records' exchange
    times, though it ends before that bucket starts."""
    late_and_early(store)
    write_gap_window(store, T0, H1 - from_ms * MS, H1 - to_ms * MS)
    for hour in (T0, H1):
        build_mart_partition(conn, store, VENUE, SYMBOL, hour, time_basis="receive")
    got = conn.execute(
        "SELECT bucket_start, has_gap FROM mart_l2_5s WHERE symbol = $s ORDER BY 1", {"s": SYMBOL}
    ).fetchall()
    assert got == [(naive_utc(H1 - 5 * SECOND), flags[0]), (naive_utc(H1), flags[1])]
