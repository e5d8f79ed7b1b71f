"""The 5-second mart: numbers against an independent computation, gaps, idempotence, atomicity."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orderbook_pipeline.compaction.gaps import (
    derive_gap_windows,
    read_gap_windows,
    write_gap_windows,
)
from orderbook_pipeline.compaction.silver import compact_l2, read_silver_l2
from orderbook_pipeline.marts import partition, sql_files
from orderbook_pipeline.marts.l2_5s import build_mart_partition, naive_utc
from orderbook_pipeline.marts.sql_files import SQL_DIR, run_sql_file
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import SyncRule
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    Ev,
    tape,
)
from orderbook_pipeline_tests.storage.test_store import make_store

BUCKET_US = 5 * SECOND
MART_COLUMNS = [
    "bucket_start",
    "venue",
    "symbol",
    "depth",
    "n_updates",
    "mid_open",
    "mid_close",
    "mid_high",
    "mid_low",
    "return_bps",
    "realized_vol_bps",
    "spread_bps_mean",
    "spread_bps_max",
    "imbalance_mean",
    "has_gap",
]


def prepare(store: Store, symbol: str = SYMBOL, hour: int = T0, n: int = 200) -> list[Ev]:
    """Events 100..159 lost (a sequence-gap window over the 10 s and 15 s buckets, the book
    rebuilt at 160), and a lone record at +60 s that is gap_detected though its ids continue."""
    ev = tape(n, t0=hour + SECOND)
    last = ev[-1]
    lone = Ev(last.u + 1, last.u + 3, None, hour + 60 * SECOND + 123, 100.5)
    b = BurstBuilder("a", symbol=symbol).diffs(ev[:100] + ev[160:]).l2(ev[:100])
    b.l2(ev[160:], gap_detected_first=True, recovered=True)
    b.diffs([lone]).l2([lone], gap_detected_first=True, recovered=True)
    b.write(store)
    compact_l2(store, VENUE, symbol, hour)
    gaps = derive_gap_windows(store, VENUE, symbol, hour, SyncRule.SPOT, now_us=hour + HOUR_US // 2)
    write_gap_windows(store, gaps, VENUE, symbol, hour)
    return ev


def expected_rows(store: Store, symbol: str = SYMBOL, hour: int = T0) -> list[tuple[Any, ...]]:
    """The mart computed in plain Python from the silver and gap-window files."""
    recs = read_silver_l2(store, VENUE, symbol, hour).to_pylist()
    windows = [
        (us(w["from_ts"]), us(w["to_ts"]))
        for w in read_gap_windows(store, VENUE, symbol, hour).to_pylist()
    ]
    groups: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        t = us(r["event_ts"])
        groups[(r["depth"], t - t % BUCKET_US)].append(r)
    rows = []
    for (depth, start), rs in sorted(groups.items()):
        rs.sort(key=lambda r: (us(r["event_ts"]), r["last_update_id"]))
        mids = [r["mid"] for r in rs]
        steps = [math.log(b / a) for a, b in pairwise(mids)]
        overlaps = any(f < start + BUCKET_US and t >= start for f, t in windows)
        rows.append(
            (
                naive_utc(start),
                VENUE,
                symbol,
                depth,
                len(rs),
                mids[0],
                mids[-1],
                max(mids),
                min(mids),
                1e4 * math.log(mids[-1] / mids[0]),
                1e4 * math.sqrt(sum(x * x for x in steps)),
                sum(r["spread_bps"] for r in rs) / len(rs),
                max(r["spread_bps"] for r in rs),
                sum(r["imbalance"] for r in rs) / len(rs),
                overlaps or any(r["gap_detected"] for r in rs),
            )
        )
    return rows


def us(dt: Any) -> int:
    return round(dt.timestamp() * 1e6)


def mart(conn: duckdb.DuckDBPyConnection, where: str = "TRUE") -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {', '.join(MART_COLUMNS)} FROM mart_l2_5s WHERE {where} ORDER BY symbol, depth, bucket_start"
    ).fetchall()


def assert_rows_match(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a[:5] == e[:5] and a[-1] == e[-1], (a, e)
        assert a[5:-1] == pytest.approx(e[5:-1], rel=1e-12, abs=1e-9), (a, e)


def test_numbers_equal_an_independent_computation(
    store: Store, conn: duckdb.DuckDBPyConnection
) -> None:
    prepare(store)
    n = build_mart_partition(conn, store, VENUE, SYMBOL, T0)
    expected = expected_rows(store)
    assert n == len(expected) == 2 * 6  # buckets 0, 5, 10, 15, 20 and 60 s, two depths
    actual = mart(conn)
    assert_rows_match(actual, expected)
    by_second = {(r[3], int((us_naive(r[0]) - T0) / SECOND)): r for r in actual}
    # Bucket 10 s: records 90..99, then the window starts: flagged by the window alone.
    assert by_second[(10, 10)][-1] is True and by_second[(10, 5)][-1] is False
    # Bucket 15 s: no record before 17 s (the gap_detected one), window overlaps too.
    assert by_second[(10, 15)][-1] is True and by_second[(10, 20)][-1] is False
    # Bucket 60 s: a single gap_detected record whose ids continue (no window): vol 0.
    lone = by_second[(10, 60)]
    assert lone[4] == 1 and lone[10] == 0.0 and lone[-1] is True
    assert any(r[10] > 0 for r in actual)  # the volatility is not trivially zero
    gw = conn.execute("SELECT cause, from_update_id, to_update_id FROM gap_windows").fetchall()
    assert [g[0] for g in gw] == ["sequence_gap"]


def us_naive(dt: Any) -> int:
    return round((dt - naive_utc(0)).total_seconds() * 1e6)


def test_rerun_changes_nothing(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    prepare(store)
    first = build_mart_partition(conn, store, VENUE, SYMBOL, T0)
    rows, gaps = mart(conn), conn.execute("SELECT * FROM gap_windows ORDER BY from_ts").fetchall()
    assert build_mart_partition(conn, store, VENUE, SYMBOL, T0) == first
    assert mart(conn) == rows
    assert conn.execute("SELECT * FROM gap_windows ORDER BY from_ts").fetchall() == gaps


def test_other_partitions_are_untouched(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    prepare(store)
    prepare(store, symbol="ETHUSDT")
    prepare(store, hour=H1)
    for sym, hour in ((SYMBOL, T0), ("ETHUSDT", T0), (SYMBOL, H1)):
        build_mart_partition(conn, store, VENUE, sym, hour)
    others = "NOT (symbol = 'BTCUSDT' AND bucket_start < TIMESTAMP '2026-01-01 01:00:00')"
    before_others = mart(conn, others)
    gaps_before = conn.execute("SELECT count(*) FROM gap_windows").fetchone()
    assert len(before_others) == 2 * 12
    # New bronze for the first partition only: one more bucket after rebuilding.
    BurstBuilder("b").received([Ev(10**6, 10**6 + 2, None, T0 + 100 * SECOND)]).write(store)
    compact_l2(store, VENUE, SYMBOL, T0)
    assert build_mart_partition(conn, store, VENUE, SYMBOL, T0) == 14
    assert mart(conn, others) == before_others
    assert conn.execute("SELECT count(*) FROM gap_windows").fetchone() == gaps_before
    assert_rows_match(mart(conn, f"NOT ({others})"), expected_rows(store))


def test_uniqueness_is_enforced(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    prepare(store)
    build_mart_partition(conn, store, VENUE, SYMBOL, T0)
    with pytest.raises(duckdb.ConstraintException):
        conn.execute("INSERT INTO mart_l2_5s SELECT * FROM mart_l2_5s LIMIT 1")
    dupes = conn.execute(
        "SELECT count(*) FROM (SELECT venue, symbol, depth, bucket_start FROM mart_l2_5s"
        " GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    assert dupes == (0,)


@pytest.mark.parametrize("failure", ["python", "sql"])
def test_failure_mid_build_changes_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    db = str(tmp_path / "mart.duckdb")
    prepare(store)
    conn = duckdb.connect(db)
    build_mart_partition(conn, store, VENUE, SYMBOL, T0)
    before, gaps_before = mart(conn), conn.execute("SELECT * FROM gap_windows").fetchall()
    BurstBuilder("b").received([Ev(10**6, 10**6 + 2, None, T0 + 100 * SECOND)]).write(store)
    compact_l2(store, VENUE, SYMBOL, T0)
    write_gap_windows(
        store,
        derive_gap_windows(store, VENUE, SYMBOL, T0, SyncRule.SPOT, now_us=H1),
        VENUE,
        SYMBOL,
        T0,
    )

    real = partition.run_sql_file

    def failing(c: duckdb.DuckDBPyConnection, name: str, params: dict[str, object]) -> None:
        if name == "insert_mart_l2_5s.sql":  # after both deletes and the gap-window insert
            if failure == "python":
                raise RuntimeError("injected")
            c.execute("SELECT * FROM no_such_table")
        real(c, name, params)

    monkeypatch.setattr(partition, "run_sql_file", failing)
    with pytest.raises((RuntimeError, duckdb.Error)):
        build_mart_partition(conn, store, VENUE, SYMBOL, T0)
    assert mart(conn) == before  # no transaction left open: this reads committed data
    assert conn.execute("SELECT * FROM gap_windows").fetchall() == gaps_before
    conn.close()
    again = duckdb.connect(db)  # the file lock was released by close()
    try:
        assert mart(again) == before
        monkeypatch.setattr(partition, "run_sql_file", real)
        assert build_mart_partition(again, store, VENUE, SYMBOL, T0) == 14
    finally:
        again.close()


def test_partition_without_silver_has_no_rows(
    store: Store, conn: duckdb.DuckDBPyConnection
) -> None:
    assert build_mart_partition(conn, store, VENUE, SYMBOL, T0) == 0
    assert mart(conn) == []


def test_on_s3(
    tmp_path: Path, request: pytest.FixtureRequest, conn: duckdb.DuckDBPyConnection
) -> None:
    s3 = make_store("s3", tmp_path, request)
    prepare(s3)
    assert build_mart_partition(conn, s3, VENUE, SYMBOL, T0) == 12
    assert_rows_match(mart(conn), expected_rows(s3))


def test_run_sql_file_binds_per_statement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "two.sql").write_text(
        "-- two statements, each with its own parameters\n"
        "CREATE TABLE t AS SELECT $a::INTEGER AS a;\n"
        "INSERT INTO t SELECT $b::INTEGER -- trailing comment\n"
    )
    monkeypatch.setattr(sql_files, "SQL_DIR", tmp_path)
    c = duckdb.connect()
    try:
        run_sql_file(c, "two.sql", {"a": 1, "b": 2, "unused": 3})
        assert c.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]
        with pytest.raises(KeyError, match=r"\$b"):
            run_sql_file(c, "two.sql", {"a": 1})
    finally:
        c.close()


def test_sql_files_follow_the_convention() -> None:
    names = sorted(p.name for p in SQL_DIR.glob("*.sql"))
    assert {
        "create_mart_l2_5s.sql",
        "delete_mart_l2_5s_partition.sql",
        "insert_mart_l2_5s.sql",
        "create_gap_windows.sql",
        "delete_gap_windows_partition.sql",
        "insert_gap_windows.sql",
    } <= set(names)
    for name in names:
        assert len(sql_files.sql_statements(name)) == 1, name
