"""The 5-second percent-band depth mart: the maths on a hand-made hour, gaps, idempotence."""

from __future__ import annotations

from typing import Any

import duckdb

from orderbook_pipeline.compaction.silver import compact_lane
from orderbook_pipeline.marts.depth_bands_5s import build_depth_bands_partition
from orderbook_pipeline.marts.l2_5s import naive_utc
from orderbook_pipeline.marts.sql_files import SQL_DIR, sql_statements
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    depth_bands_record,
    write_gap_window,
)

COLUMNS = [
    "bucket_start",
    "band_pct",
    "n_samples",
    "bid_qty_mean",
    "ask_qty_mean",
    "bid_notional_mean",
    "ask_notional_mean",
    "bid_qty_last",
    "ask_qty_last",
    "bid_notional_last",
    "ask_notional_last",
    "complete",
    "has_gap",
]


def band(pct: float, bid: float, ask: float, *, complete: bool = True) -> tuple[Any, ...]:
    """A band whose notionals are 100 × its quantities (mid 100)."""
    return (pct, bid, ask, 100 * bid, 100 * ask, complete)


def prepare(store: Store, hour: int = T0, symbol: str = SYMBOL) -> None:
    """Bucket 0 s: three samples from two bursts, one incomplete at 1 %; bucket 5 s: one
    gap_detected sample; bucket 20 s: one sample inside a gap window; bucket 40 s: clean."""
    a = BurstBuilder("a", symbol=symbol).add(
        "depth_bands",
        depth_bands_record(100, hour + 1 * SECOND, [band(0.1, 1, 2), band(1.0, 10, 20)]),
        depth_bands_record(
            110, hour + 2 * SECOND, [band(0.1, 3, 4), band(1.0, 30, 40, complete=False)]
        ),
        depth_bands_record(
            200, hour + 6 * SECOND, [band(0.1, 7, 8), band(1.0, 70, 80)], gap_detected=True
        ),
        depth_bands_record(300, hour + 21 * SECOND, [band(0.1, 9, 9), band(1.0, 90, 90)]),
        depth_bands_record(400, hour + 41 * SECOND, [band(0.1, 2, 2), band(1.0, 20, 20)]),
    )
    b = BurstBuilder("b", symbol=symbol).add(
        "depth_bands",
        depth_bands_record(105, hour + 1500 * 1000, [band(0.1, 5, 6), band(1.0, 50, 60)]),
        # The same sample as a's at 110 (same update id): one copy is kept.
        depth_bands_record(
            110, hour + 2 * SECOND, [band(0.1, 3, 4), band(1.0, 30, 40, complete=False)]
        ),
    )
    a.write(store)
    b.write(store)
    compact_lane(store, "depth_bands", VENUE, symbol, hour)
    write_gap_window(store, hour, hour + 18 * SECOND, hour + 21 * SECOND, (250, 299), symbol)


def mart(conn: duckdb.DuckDBPyConnection, where: str = "TRUE") -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM mart_depth_bands_5s WHERE {where}"
        " ORDER BY symbol, bucket_start, band_pct"
    ).fetchall()


def at(seconds: int, hour: int = T0) -> Any:
    return naive_utc(hour + seconds * SECOND)


def test_means_and_lasts_per_bucket_and_band(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    prepare(store)
    assert build_depth_bands_partition(conn, store, VENUE, SYMBOL, T0) == 8
    rows = mart(conn)
    # Bucket 0 s, samples at 1 s (a), 1.5 s (b), 2 s (a = b's copy): means over 3, last at 2 s.
    assert rows[0] == (at(0), 0.1, 3, 3.0, 4.0, 300.0, 400.0, 3.0, 4.0, 300.0, 400.0, True, False)
    assert rows[1] == (
        at(0),
        1.0,
        3,
        30.0,
        40.0,
        3000.0,
        4000.0,
        30.0,
        40.0,
        3000.0,
        4000.0,
        False,
        False,
    )
    # Bucket 5 s: its only sample is gap_detected.
    assert rows[2] == (at(5), 0.1, 1, 7.0, 8.0, 700.0, 800.0, 7.0, 8.0, 700.0, 800.0, True, True)
    # Bucket 20 s: inside the gap window; bucket 40 s: clean.
    assert [(r[0], r[1], r[-1]) for r in rows[4:]] == [
        (at(20), 0.1, True),
        (at(20), 1.0, True),
        (at(40), 0.1, False),
        (at(40), 1.0, False),
    ]
    # Bucket 15 s has no sample, hence no row, though the window overlaps it.
    assert at(15) not in {r[0] for r in rows}


def test_rerun_and_other_partitions(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    prepare(store)
    prepare(store, hour=H1)
    prepare(store, symbol="ETHUSDT")
    for symbol, hour in ((SYMBOL, T0), (SYMBOL, H1), ("ETHUSDT", T0)):
        build_depth_bands_partition(conn, store, VENUE, symbol, hour)
    everything = mart(conn)
    assert len(everything) == 3 * 8
    assert build_depth_bands_partition(conn, store, VENUE, SYMBOL, T0) == 8
    assert mart(conn) == everything
    dupes = conn.execute(
        "SELECT count(*) FROM (SELECT venue, symbol, band_pct, bucket_start"
        " FROM mart_depth_bands_5s GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    assert dupes == (0,)
    # New bronze in T0 only: T0 gains a bucket, the others are untouched.
    others = f"NOT (symbol = '{SYMBOL}' AND bucket_start < TIMESTAMP '2026-01-01 01:00:00')"
    others_before = mart(conn, others)
    assert len(others_before) == 16
    extra = depth_bands_record(999, T0 + 50 * SECOND, [(0.1, 1.0, 1.0, 100.0, 100.0, True)])
    BurstBuilder("c").add("depth_bands", extra).write(store)
    compact_lane(store, "depth_bands", VENUE, SYMBOL, T0)
    assert build_depth_bands_partition(conn, store, VENUE, SYMBOL, T0) == 9
    assert mart(conn, others) == others_before


def test_an_hour_without_depth_bands_has_no_rows(
    store: Store, conn: duckdb.DuckDBPyConnection
) -> None:
    assert build_depth_bands_partition(conn, store, VENUE, SYMBOL, T0) == 0
    assert mart(conn) == []


def test_sql_files_are_one_statement_each() -> None:
    names = {
        "create_mart_depth_bands_5s.sql",
        "delete_mart_depth_bands_5s_partition.sql",
        "insert_mart_depth_bands_5s.sql",
        "create_mart_settings.sql",
        "create_macro_bucket_has_gap.sql",
        "insert_mart_time_basis.sql",
        "select_mart_time_basis.sql",
    }
    assert names <= {p.name for p in SQL_DIR.glob("*.sql")}
    for name in names:
        assert len(sql_statements(name)) == 1, name
