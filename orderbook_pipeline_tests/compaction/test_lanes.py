"""The lane registry and compact_lane: every lane deduplicated across bursts by one mechanism."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest

from orderbook_pipeline.compaction.avro_arrow import read_avro_table
from orderbook_pipeline.compaction.parts import part_name, part_path
from orderbook_pipeline.compaction.silver import (
    DIFF_SCHEMA,
    L2_SCHEMA,
    compact_lane,
    read_silver_lane,
)
from orderbook_pipeline.lanes.arrow import arrow_schema
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import BRONZE_LANES, Partition
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    agg_trade_record,
    book_mismatch_record,
    book_ticker_record,
    deep_snapshot_record,
    depth_bands_record,
    kline_record,
    partial_depth_record,
    put_avro,
    trade_record,
)

# The silver schemas as they were written by hand before the registry derived them: the
# derivation must reproduce them exactly (existing Parquet files and readers depend on them).
_TS = pa.timestamp("us", tz="UTC")
_LEVEL = pa.struct([("side", pa.string()), ("px", pa.float64()), ("qty", pa.float64())])
_STRING_LEVEL = pa.struct([("px", pa.string()), ("qty", pa.string())])
LEGACY_L2 = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_ts", _TS, nullable=False),
        pa.field("ingest_ts", _TS, nullable=False),
        pa.field("first_update_id", pa.int64(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("prev_update_id", pa.int64()),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("levels", pa.list_(_LEVEL), nullable=False),
        pa.field("mid", pa.float64(), nullable=False),
        pa.field("spread_bps", pa.float64(), nullable=False),
        pa.field("imbalance", pa.float64(), nullable=False),
        pa.field("gap_detected", pa.bool_(), nullable=False),
        pa.field("recovered", pa.bool_(), nullable=False),
        pa.field("burst_id", pa.string(), nullable=False),
    ]
)
LEGACY_DIFF = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("event_ts", _TS, nullable=False),
        pa.field("transaction_ts", _TS),
        pa.field("ingest_ts", _TS, nullable=False),
        pa.field("first_update_id", pa.int64(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("prev_update_id", pa.int64()),
        pa.field("bids", pa.list_(_STRING_LEVEL), nullable=False),
        pa.field("asks", pa.list_(_STRING_LEVEL), nullable=False),
        pa.field("burst_id", pa.string(), nullable=False),
    ]
)

MS = 1000
# One record of lane k-th key: (k, ingest lag / fetch delay in µs) -> record. Keys 0..59 lie
# in the hour T0; a smaller lag means an earlier receive (and, for klines, a later fetch).
Make = Callable[[int, int], dict[str, Any]]
MAKERS: dict[str, Make] = {
    "trades": lambda k, lag: trade_record(1000 + k, T0 + SECOND + k * 100 * MS, ingest_lag_us=lag),
    "agg_trades": lambda k, lag: agg_trade_record(
        500 + k, T0 + SECOND + k * 100 * MS, ingest_lag_us=lag
    ),
    "book_ticker": lambda k, lag: book_ticker_record(
        9000 + k, T0 + SECOND + k * 100 * MS, ingest_lag_us=lag
    ),
    "partial_depth": lambda k, lag: partial_depth_record(
        9000 + k, T0 + SECOND + k * 100 * MS, ingest_lag_us=lag
    ),
    "depth_bands": lambda k, lag: depth_bands_record(
        9000 + k, T0 + SECOND + k * SECOND, ingest_lag_us=lag
    ),
    "deep_snapshots": lambda k, lag: deep_snapshot_record(9000 + k, T0 + k * 60 * SECOND),
    "book_mismatches": lambda k, lag: book_mismatch_record(
        "partial_depth", 9000 + k, T0 + SECOND + k * SECOND
    ),
    "klines": lambda k, lag: kline_record(T0 + k * 60 * SECOND, T0 + 2 * 3600 * SECOND - lag),
}
# Lanes whose key holds the burst: only a second copy of the same burst's file duplicates.
BURST_KEYED = {"snapshots", "deep_snapshots", "book_mismatches"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "data"))


def test_the_registry_covers_every_bronze_lane_with_columns_of_its_schema() -> None:
    assert set(LANES) == set(BRONZE_LANES)
    for name, spec in LANES.items():
        names = spec.schema.names
        assert spec.partition_ts in names, name
        assert set(spec.key) <= set(names), name
        assert {c for c, _ in (*spec.preference, *spec.order)} <= set(names), name
        assert {d for _, d in (*spec.preference, *spec.order)} <= {"ascending", "descending"}


def test_derived_schemas_equal_the_handwritten_silver_schemas_byte_for_byte() -> None:
    for derived, legacy in ((L2_SCHEMA, LEGACY_L2), (DIFF_SCHEMA, LEGACY_DIFF)):
        assert derived.equals(legacy, check_metadata=True)
        assert derived.serialize().to_pybytes() == legacy.serialize().to_pybytes()
    assert arrow_schema(LANES["l2"].avro) == LEGACY_L2


@pytest.mark.parametrize("lane", sorted(MAKERS))
def test_the_decoder_reads_every_new_lane_as_fastavro_into_the_silver_schema(lane: str) -> None:
    records = [{**MAKERS[lane](k, 1000), "burst_id": "a"} for k in range(5)]
    if lane == "book_mismatches":  # nulls and several items in the nested differences
        records[1] = {
            **records[1],
            **book_mismatch_record("deep_snapshot", 1, T0, differing_levels=3),
        }
        records[1]["burst_id"] = "a"
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(LANES[lane].avro), records, codec="snappy")
    table = read_avro_table(out.getvalue())
    assert table.to_pylist() == list(fastavro.reader(io.BytesIO(out.getvalue())))
    assert table.cast(LANES[lane].schema).schema == LANES[lane].schema


def _overlapping(store: Store, lane: str) -> None:
    """Burst a: keys 0..29 (ingest lag 1 ms); burst b: keys 20..49, received earlier (0.4 ms)
    and, for klines, fetched later. Lanes keyed by burst: a's file a second time instead."""
    make = MAKERS[lane]
    if lane in BURST_KEYED:
        BurstBuilder("a").add(lane, *(make(k, 1000) for k in range(30))).write(store)
        part = Partition(lane, VENUE, SYMBOL, T0)
        copy = [{**make(k, 1000), "burst_id": "a"} for k in range(30)]
        put_avro(store, part, "a-99", copy)
        return
    BurstBuilder("a").add(lane, *(make(k, 1000) for k in range(30))).write(store)
    BurstBuilder("b").add(lane, *(make(k, 400) for k in range(20, 50))).write(store)


@pytest.mark.parametrize("lane", sorted(MAKERS))
def test_every_lane_keeps_one_preferred_copy_per_key_in_order_and_reruns_identically(
    store: Store, lane: str
) -> None:
    spec = LANES[lane]
    _overlapping(store, lane)
    res = compact_lane(store, lane, VENUE, SYMBOL, T0)
    assert res is not None and res.path == part_path(
        Partition(lane, VENUE, SYMBOL, T0), part_name(0)
    )
    table = read_silver_lane(store, lane, VENUE, SYMBOL, T0)
    assert table.schema == spec.schema
    if lane in BURST_KEYED:
        assert (res.rows_in, res.rows_out, res.bursts) == (60, 30, ["a"])
    else:
        assert (res.rows_in, res.rows_out, res.bursts) == (60, 50, ["a", "b"])
        # Keys 20..29 come from b: received earlier (klines: fetched later).
        assert table.column("burst_id").to_pylist() == ["a"] * 20 + ["b"] * 30
    keys = list(zip(*(table.column(k).to_pylist() for k in spec.key), strict=True))
    assert len(set(keys)) == len(keys)
    assert table.equals(table.sort_by(list(spec.order)))
    first = store.read_bytes(res.path)
    compact_lane(store, lane, VENUE, SYMBOL, T0)
    assert store.read_bytes(res.path) == first


def test_snapshots_lane_compacts_too(store: Store) -> None:
    b = BurstBuilder("a").snapshot(999, T0 + SECOND).snapshot(2000, T0 + 9 * SECOND, reason="gap")
    b.write(store)
    res = compact_lane(store, "snapshots", VENUE, SYMBOL, T0)
    assert res is not None and res.rows_out == 2
    table = read_silver_lane(store, "snapshots", VENUE, SYMBOL, T0)
    assert table.column("reason").to_pylist() == ["bootstrap", "gap"]


def test_klines_keep_the_latest_fetch(store: Store) -> None:
    """A candle fetched while still open, then again once closed: the re-fetch supersedes,
    whichever run (burst id) fetched it."""
    open_ts = T0 + 5 * 60 * SECOND
    early, late = T0 + 5 * 60 * SECOND + 30 * SECOND, T0 + 7 * 60 * SECOND
    BurstBuilder("z-run").add("klines", kline_record(open_ts, early, close=101.0)).write(store)
    BurstBuilder("a-run").add("klines", kline_record(open_ts, late, close=102.0)).write(store)
    BurstBuilder("m-run").add("klines", kline_record(open_ts, late - 1, close=103.0)).write(store)
    five = kline_record(open_ts, early, interval="5m", close=104.0)
    BurstBuilder("z-run2").add("klines", five).write(store)
    compact_lane(store, "klines", VENUE, SYMBOL, T0)
    rows = read_silver_lane(store, "klines", VENUE, SYMBOL, T0).to_pylist()
    assert [(r["interval"], r["close"], r["burst_id"]) for r in rows] == [
        ("1m", 102.0, "a-run"),
        ("5m", 104.0, "z-run2"),
    ]


@pytest.mark.parametrize(
    ("lane", "make"), [("trades", trade_record), ("agg_trades", agg_trade_record)]
)
def test_missing_before_is_recounted_over_the_union_of_bursts(
    store: Store, lane: str, make: Callable[..., dict[str, Any]]
) -> None:
    """Burst a lost 105..106 (its record of 107 says missing_before 2), burst b received them;
    the exchange skipped nobody until 110..111, which both missed."""
    id_col = LANES[lane].key[0]

    def rec(i: int, missing: int = 0) -> dict[str, Any]:
        return {**make(i, T0 + SECOND + i * MS), "missing_before": missing}

    a = [rec(i) for i in range(100, 105)] + [rec(107, 2), rec(108), rec(109), rec(112, 2)]
    b = [rec(i) for i in range(103, 110)] + [rec(112, 2), rec(113)]
    BurstBuilder("a").add(lane, *a).write(store)
    BurstBuilder("b").add(lane, *b).write(store)
    compact_lane(store, lane, VENUE, SYMBOL, T0)
    table = read_silver_lane(store, lane, VENUE, SYMBOL, T0)
    ids, missing = (table.column(c).to_pylist() for c in (id_col, "missing_before"))
    got = dict(zip(ids, missing, strict=True))
    assert got == {i: 2 if i == 112 else 0 for i in [*range(100, 110), 112, 113]}
    assert table.schema == LANES[lane].schema  # the recomputed column keeps its type


def test_an_hour_without_bronze_writes_nothing(store: Store) -> None:
    assert compact_lane(store, "trades", VENUE, SYMBOL, T0) is None
    assert store.list_files("silver/") == []
    empty = read_silver_lane(store, "trades", VENUE, SYMBOL, T0)
    assert empty.num_rows == 0 and empty.schema == LANES["trades"].schema
    with pytest.raises(ValueError, match="per depth"):
        compact_lane(store, "l2", VENUE, SYMBOL, T0)
    with pytest.raises(ValueError, match="unknown lane"):
        compact_lane(store, "nope", VENUE, SYMBOL, T0)
