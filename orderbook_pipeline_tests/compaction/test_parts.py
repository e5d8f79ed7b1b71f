"""Settled parts: an hour compacted a few minutes at a time holds exactly what one compaction of
the whole hour holds, reads each bronze file about once, and recovers from late files, dead
refreshes and hand-deleted parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from orderbook_pipeline.compaction.parts import (
    LEGACY_FILE,
    data_files,
    live_files,
    part_name,
    part_path,
    read_state,
    settled_cut,
    state_path,
)
from orderbook_pipeline.compaction.silver import (
    compact_l2,
    compact_lane,
    read_silver_l2,
    read_silver_lane,
    write_parquet,
)
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import HOUR_US, Partition
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    book_ticker_record,
    tape,
    trade_record,
)
from orderbook_pipeline_tests.storage.test_store import make_store

EV = tape(300)  # 30 s of events from T0 + 1 s, 10 a second


def at(i: int) -> int:
    return EV[i].ts


# Burst a writes three files, b two; a's middle file comes from a rebuilt book (flagged), b
# receives earlier. Landings: what has been published before each compaction, and its cut:
# every copy of a row below the cut has landed (a1 and b0 reach past their cut: pending).
def land_book(store: Store, step: int) -> None:
    if step == 0:
        BurstBuilder("a0").received(EV[:70]).write(store)
        BurstBuilder("a1").received(EV[70:140], gap_detected_first=True, recovered=True).write(
            store
        )
    elif step == 1:
        BurstBuilder("b0", ingest_lag_us=400).received(EV[100:180]).write(store)
        BurstBuilder("a2").received(EV[140:200]).write(store)
    else:
        BurstBuilder("b1", ingest_lag_us=400).received(EV[180:]).write(store)


BOOK_CUTS = [at(60), at(170), None]


def _stepwise(
    store: Store,
    land: Callable[[Store, int], None],
    cuts: list[int | None],
    run: Callable[[Store, int | None], Any],
) -> list[Any]:
    out = []
    for step, cut in enumerate(cuts):
        land(store, step)
        out.append(run(store, cut))
    return out


def _whole(
    tmp_path: Path,
    land: Callable[[Store, int], None],
    steps: int,
    run: Callable[[Store, int | None], Any],
) -> Store:
    whole = open_store(str(tmp_path / "whole"))
    for step in range(steps):
        land(whole, step)
    run(whole, None)
    return whole


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


def test_l2_in_parts_equals_one_compaction_of_the_hour(store: Store, tmp_path: Path) -> None:
    def run(s: Store, cut: int | None) -> Any:
        return compact_l2(s, VENUE, SYMBOL, T0, cut)

    results = _stepwise(store, land_book, BOOK_CUTS, run)
    whole = _whole(tmp_path, land_book, 3, run)
    for depth in (10, 20):
        parts = read_silver_l2(store, VENUE, SYMBOL, T0, depth)
        assert parts.equals(read_silver_l2(whole, VENUE, SYMBOL, T0, depth))
        assert parts.column("last_update_id").to_pylist() == [e.u for e in EV]
        partition = Partition("l2", VENUE, SYMBOL, T0, depth)
        assert live_files(store, partition) == [
            part_path(partition, part_name(i)) for i in range(3)
        ]
    # New files, and again those still holding rows past the last cut: a0 and a1, then a2, b0.
    assert [r[10].files_in for r in results] == [2, 4, 3]
    assert [r[10].rows_out for r in results] == [60, 110, 130]
    state = results[-1][10].state
    assert state is not None and state.cut_us == T0 + HOUR_US
    assert (state.rows, state.bronze_keys, state.bronze_rows) == (300, 300, 400)


def test_a_copy_preferred_later_still_wins(store: Store) -> None:
    """Rows 100..139: a1's copy (rebuilt book) landed first, b0's (unbroken) later but before
    their cut: silver keeps b0's, exactly as a compaction of the whole hour does."""
    _stepwise(store, land_book, BOOK_CUTS, lambda s, c: compact_l2(s, VENUE, SYMBOL, T0, c))
    rows = read_silver_l2(store, VENUE, SYMBOL, T0, 10).to_pylist()
    by_id = {r["last_update_id"]: r["burst_id"] for r in rows}
    assert {by_id[e.u] for e in EV[100:140]} == {"b0"}
    assert {by_id[e.u] for e in EV[70:100]} == {"a1"}
    assert not any(r["recovered"] for r in rows if r["burst_id"] != "a1")


@pytest.mark.parametrize("lane", ["diffs", "snapshots"])
def test_other_lanes_in_parts_equal_one_compaction(store: Store, tmp_path: Path, lane: str) -> None:
    def land(s: Store, step: int) -> None:
        land_book(s, step)
        if lane == "snapshots" and step < 2:
            BurstBuilder(f"s{step}").snapshot(EV[50 * step].u, at(50 * step)).write(s)

    def run(s: Store, cut: int | None) -> Any:
        return compact_lane(s, lane, VENUE, SYMBOL, T0, cut)

    _stepwise(store, land, BOOK_CUTS, run)
    whole = _whole(tmp_path, land, 3, run)
    assert read_silver_lane(store, lane, VENUE, SYMBOL, T0).equals(
        read_silver_lane(whole, lane, VENUE, SYMBOL, T0)
    )


def test_receive_time_lane_keeps_each_key_once_across_a_cut(store: Store, tmp_path: Path) -> None:
    """bookTicker on spot is partitioned by receive time: a's copy of update 5 falls before the
    cut, b's after it. The later part must not hold 5 again, and the earlier-received copy is
    the one kept, as in a compaction of the whole hour."""
    cut = T0 + 10 * SECOND

    def rec(update_id: int, ts: int) -> dict[str, Any]:
        return book_ticker_record(update_id, ts)

    def land(s: Store, step: int) -> None:
        if step == 0:
            BurstBuilder("a").add(
                "book_ticker", *(rec(u, cut - (10 - u) * 100_000) for u in range(10))
            ).write(s)
        else:
            BurstBuilder("b").add(
                "book_ticker", *(rec(u, cut + (u - 4) * 100_000) for u in range(5, 15))
            ).write(s)

    def run(s: Store, c: int | None) -> Any:
        return compact_lane(s, "book_ticker", VENUE, SYMBOL, T0, c)

    _stepwise(store, land, [cut, None], run)
    got = read_silver_lane(store, "book_ticker", VENUE, SYMBOL, T0)
    ids = got.column("update_id").to_pylist()
    assert sorted(ids) == list(range(15)) and len(ids) == 15
    whole = _whole(tmp_path, land, 2, run)
    expected = read_silver_lane(whole, "book_ticker", VENUE, SYMBOL, T0)
    assert got.sort_by("update_id").equals(expected.sort_by("update_id"))


def test_missing_trades_are_counted_across_parts(store: Store) -> None:
    """Ids 100..109 in the first part, 113..119 in the second: the second part's first row
    says 3 missing (110..112), from the first part's last id."""

    def land(s: Store, step: int) -> None:
        ids = range(100, 110) if step == 0 else range(113, 120)
        BurstBuilder(f"t{step}").add(
            "trades", *(trade_record(i, T0 + i * 100_000) for i in ids)
        ).write(s)

    _stepwise(
        store,
        land,
        [T0 + 111 * 100_000, None],
        lambda s, c: compact_lane(s, "trades", VENUE, SYMBOL, T0, c),
    )
    table = read_silver_lane(store, "trades", VENUE, SYMBOL, T0)
    missing = dict(
        zip(
            table.column("trade_id").to_pylist(),
            table.column("missing_before").to_pylist(),
            strict=True,
        )
    )
    assert missing[113] == 3 and sum(missing.values()) == 3


def test_a_late_file_below_the_cut_recompacts_the_hour(store: Store, tmp_path: Path) -> None:
    """A killed burst's file is salvaged after its rows were cut: the directory is compacted
    again from all of its bronze, and holds what a whole compaction holds."""
    BurstBuilder("a").received(EV[:100]).write(store)
    compact_l2(store, VENUE, SYMBOL, T0, at(150))
    BurstBuilder("late", ingest_lag_us=100).received(EV[50:120]).write(store)  # rows < the cut
    result = compact_l2(store, VENUE, SYMBOL, T0)[10]
    assert result.recompacted
    whole = open_store(str(tmp_path / "whole"))
    BurstBuilder("a").received(EV[:100]).write(whole)
    BurstBuilder("late", ingest_lag_us=100).received(EV[50:120]).write(whole)
    compact_l2(whole, VENUE, SYMBOL, T0)
    assert read_silver_l2(store, VENUE, SYMBOL, T0, 10).equals(
        read_silver_l2(whole, VENUE, SYMBOL, T0, 10)
    )
    partition = Partition("l2", VENUE, SYMBOL, T0, 10)
    assert data_files(store, partition) == live_files(store, partition)  # old parts removed


def test_nothing_new_reads_nothing_and_writes_nothing(store: Store) -> None:
    BurstBuilder("a").received(EV[:100]).write(store)
    first = compact_l2(store, VENUE, SYMBOL, T0)[10]
    partition = Partition("l2", VENUE, SYMBOL, T0, 10)
    state_before = store.read_bytes(state_path(partition))
    again = compact_l2(store, VENUE, SYMBOL, T0)[10]
    assert (again.files_in, again.rows_out, again.path) == (0, 0, "")
    assert store.read_bytes(state_path(partition)) == state_before
    assert again.state == first.state


def test_a_refresh_that_died_between_part_and_state_is_redone(store: Store) -> None:
    BurstBuilder("a").received(EV[:100]).write(store)
    compact_l2(store, VENUE, SYMBOL, T0, at(40))
    partition = Partition("l2", VENUE, SYMBOL, T0, 10)
    state = read_state(store, partition)
    assert state is not None and state.parts == (part_name(0),)
    orphan = part_path(partition, part_name(1))  # written, then the refresh died
    write_parquet(store, orphan, read_silver_l2(store, VENUE, SYMBOL, T0, 10))
    compact_l2(store, VENUE, SYMBOL, T0)
    assert not store.exists(orphan)
    assert read_silver_l2(store, VENUE, SYMBOL, T0, 10).column("last_update_id").to_pylist() == [
        e.u for e in EV[:100]
    ]


def test_a_deleted_part_or_a_legacy_file_is_rebuilt(store: Store) -> None:
    BurstBuilder("a").received(EV[:100]).write(store)
    compact_l2(store, VENUE, SYMBOL, T0, at(40))
    compact_l2(store, VENUE, SYMBOL, T0)
    partition = Partition("l2", VENUE, SYMBOL, T0, 10)
    store.delete(part_path(partition, part_name(0)))
    assert compact_l2(store, VENUE, SYMBOL, T0)[10].recompacted
    assert read_silver_l2(store, VENUE, SYMBOL, T0, 10).num_rows == 100
    # Silver written whole by an earlier version: read as it is, replaced by parts when next
    # compacted.
    other = Partition("l2", VENUE, "ETHUSDT", T0, 10)
    legacy = f"{other.directory('silver')}/{LEGACY_FILE}"
    table = read_silver_l2(store, VENUE, SYMBOL, T0, 10)
    write_parquet(store, legacy, table)
    assert read_silver_l2(store, VENUE, "ETHUSDT", T0, 10).equals(table)
    BurstBuilder("e", symbol="ETHUSDT").received(EV[:10]).write(store)
    compact_l2(store, VENUE, "ETHUSDT", T0)
    assert not store.exists(legacy)
    assert read_silver_l2(store, VENUE, "ETHUSDT", T0, 10).num_rows == 10


def test_settled_cut_leaves_a_file_roll_and_a_margin() -> None:
    hour_end = T0 + HOUR_US
    now = T0 + 20 * 60 * SECOND + 7 * SECOND  # 20 min 7 s into the hour
    # file_seconds 60 + 30 s margin = 90 s back, on a 5 s boundary
    assert settled_cut(now, T0, hour_end, 60.0) == T0 + 18 * 60 * SECOND + 35 * SECOND
    assert settled_cut(T0 + 30 * SECOND, T0, hour_end, 60.0) == T0  # nothing settled yet
    assert settled_cut(hour_end + 60 * SECOND, T0, hour_end, 60.0) < hour_end
    assert settled_cut(hour_end + 90 * SECOND, T0, hour_end, 60.0) == hour_end


def test_every_lane_is_compacted_in_parts_but_klines() -> None:
    assert [n for n, spec in LANES.items() if not spec.incremental] == ["klines"]
    assert {n for n, spec in LANES.items() if not spec.copies_share_ts} == {
        "book_ticker",
        "partial_depth",
    }
    assert pa.types.is_timestamp(LANES["book_ticker"].schema.field("ts").type)
