"""Silver compaction: dedup across overlapping bursts, order, codec, atomicity, idempotence."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orderbook_pipeline.compaction import parquet_io, silver
from orderbook_pipeline.compaction.parts import part_name, part_path
from orderbook_pipeline.compaction.silver import (
    DIFF_SCHEMA,
    L2_SCHEMA,
    compact_diffs,
    compact_l2,
    deduplicate,
    read_silver_diffs,
    read_silver_l2,
)
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    l2_record,
    tape,
)
from orderbook_pipeline_tests.storage.test_store import make_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


def overlapping_bursts(store: Store) -> list:
    """Burst a: events 0..59, its book rebuilt at 30 (flags set from there). Burst b: 20..99,
    clean. b's diffs arrive earlier (smaller ingest lag)."""
    ev = tape(100)
    BurstBuilder("a").received(ev[:30]).received(
        ev[30:60], gap_detected_first=True, recovered=True
    ).write(store)
    b = BurstBuilder("b", ingest_lag_us=400)
    b.received(ev[20:]).write(store)
    return ev


def test_l2_dedup_keeps_one_copy_per_update_id_preferring_the_unbroken_burst(store: Store) -> None:
    ev = overlapping_bursts(store)
    results = compact_l2(store, VENUE, SYMBOL, T0)
    assert sorted(results) == [10, 20]
    for depth, res in results.items():
        assert (res.rows_in, res.rows_out, res.files_in) == (140, 100, 2)
        assert res.bursts == ["a", "b"]
        assert res.path == part_path(Partition("l2", VENUE, SYMBOL, T0, depth), part_name(0))
        table = read_silver_l2(store, VENUE, SYMBOL, T0, depth)
        assert table.schema == L2_SCHEMA
        ids = table.column("last_update_id").to_pylist()
        assert ids == [e.u for e in ev]  # each exactly once, in (event_ts, id) order
        by_id = {r["last_update_id"]: r for r in table.to_pylist()}
        # Overlap 20..29: both clean, b ingested earlier. Overlap 30..59: a is flagged, b clean.
        assert {by_id[e.u]["burst_id"] for e in ev[:20]} == {"a"}
        assert {by_id[e.u]["burst_id"] for e in ev[20:]} == {"b"}
        assert not any(r["gap_detected"] or r["recovered"] for r in by_id.values())
        assert all(r["depth"] == depth for r in by_id.values())
    both = read_silver_l2(store, VENUE, SYMBOL, T0)
    assert both.num_rows == 200 and both.column("depth").to_pylist() == [10] * 100 + [20] * 100


def test_l2_file_is_zstd_typed_and_rerun_is_identical(store: Store) -> None:
    overlapping_bursts(store)
    rel = compact_l2(store, VENUE, SYMBOL, T0)[10].path
    first = store.read_bytes(rel)
    meta = pq.ParquetFile(io.BytesIO(first)).metadata
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
    schema = pq.read_schema(io.BytesIO(first))
    assert schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("levels").type == pa.list_(
        pa.struct([("side", pa.string()), ("px", pa.float64()), ("qty", pa.float64())])
    )
    table = read_silver_l2(store, VENUE, SYMBOL, T0, 10)
    compact_l2(store, VENUE, SYMBOL, T0)
    assert store.read_bytes(rel) == first
    assert read_silver_l2(store, VENUE, SYMBOL, T0, 10).equals(table)


def test_copy_preference_order() -> None:
    """recovered == False first, then gap_detected == False, then earliest ingest, then burst."""
    ev = tape(1)[0]
    rows = [
        l2_record(ev, 10, "a", recovered=True, gap_detected=True),
        l2_record(ev, 10, "b", recovered=True),
        l2_record(ev, 10, "c", gap_detected=True),
        l2_record(ev, 10, "e", ingest_lag_us=900),
        l2_record(ev, 10, "d", ingest_lag_us=900),
        l2_record(ev, 10, "f", ingest_lag_us=800),
    ]
    keep = silver.L2_KEY, silver.L2_PREFERENCE
    order = []
    while rows:
        winner = deduplicate(pa.Table.from_pylist(rows, schema=L2_SCHEMA), *keep)
        assert winner.num_rows == 1
        order.append(winner.column("burst_id")[0].as_py())
        rows = [r for r in rows if r["burst_id"] != order[-1]]
    assert order == ["f", "d", "e", "c", "b", "a"]


def test_temporaries_never_visible_and_failed_write_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlapping_bursts(store)
    rel = part_path(Partition("l2", VENUE, SYMBOL, T0, 10), part_name(0))
    seen: list[list[str]] = []
    publish = store.publish

    def spying_publish(temp: str, rel_path: str, durable: bool = True) -> None:
        seen.append(store.list_files("silver/"))  # what a reader sees just before publish
        publish(temp, rel_path, durable)

    monkeypatch.setattr(store, "publish", spying_publish)
    compact_l2(store, VENUE, SYMBOL, T0)
    assert seen[0] == []  # nothing visible under silver/ before the first publish
    assert store.list_files("silver/") == sorted(
        part_path(Partition("l2", VENUE, SYMBOL, T0, d), part_name(0)) for d in (10, 20)
    )
    assert store.stray_temporaries() == []

    store.delete(rel)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parquet_io.pq, "write_table", boom)
    with pytest.raises(Exception, match="No space"):
        compact_l2(store, VENUE, SYMBOL, T0)
    assert not store.exists(rel)
    assert store.stray_temporaries() == []


def test_empty_hour_writes_and_removes_nothing(store: Store) -> None:
    overlapping_bursts(store)
    compact_l2(store, VENUE, SYMBOL, T0)
    compact_diffs(store, VENUE, SYMBOL, T0)
    before = store.list_files("silver/")
    assert compact_l2(store, VENUE, SYMBOL, H1) == {}
    assert compact_diffs(store, VENUE, SYMBOL, H1) is None
    assert compact_l2(store, VENUE, "ETHUSDT", T0) == {}
    assert store.list_files("silver/") == before
    assert read_silver_l2(store, VENUE, SYMBOL, H1).schema == L2_SCHEMA
    assert read_silver_l2(store, VENUE, SYMBOL, H1).num_rows == 0
    assert read_silver_diffs(store, VENUE, SYMBOL, H1).schema == DIFF_SCHEMA


def test_diffs_dedup_keeps_the_earliest_ingest_copy(store: Store) -> None:
    ev = overlapping_bursts(store)
    res = compact_diffs(store, VENUE, SYMBOL, T0)
    assert res is not None
    assert (res.rows_in, res.rows_out, res.files_in, res.bursts) == (140, 100, 2, ["a", "b"])
    table = read_silver_diffs(store, VENUE, SYMBOL, T0)
    assert table.schema == DIFF_SCHEMA
    assert [(r["first_update_id"], r["last_update_id"]) for r in table.to_pylist()] == [
        (e.U, e.u) for e in ev
    ]
    assert table.column("burst_id").to_pylist() == ["a"] * 20 + ["b"] * 80
    assert table.column("bids")[0].as_py() == [
        {"px": f"{ev[0].mid - 0.01:.8f}", "qty": "1.00000000"}
    ]
    first = store.read_bytes(res.path)
    compact_diffs(store, VENUE, SYMBOL, T0)
    assert store.read_bytes(res.path) == first


def test_partitions_are_kept_apart(store: Store) -> None:
    """Records in the next hour and another symbol do not leak into this partition."""
    ev = tape(20, t0=H1 - 10 * 100_000)  # 10 events before the hour's end, 10 after
    BurstBuilder("a").received(ev).write(store)
    BurstBuilder("x", symbol="ETHUSDT").received(ev[:5]).write(store)
    assert compact_l2(store, VENUE, SYMBOL, T0)[10].rows_out == 10
    assert compact_l2(store, VENUE, SYMBOL, H1)[10].rows_out == 10
    assert read_silver_l2(store, VENUE, SYMBOL, H1, 10).column("last_update_id").to_pylist() == [
        e.u for e in ev[10:]
    ]
