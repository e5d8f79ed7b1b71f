"""Gap windows from silver parts and their copies equal the windows derived from bronze, in
every scenario the classifier tells apart, for a closed hour and for cuts inside one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orderbook_pipeline.compaction.gap_inputs import DIFF_COPIES, L2_COPIES, inputs_from_parts
from orderbook_pipeline.compaction.gaps import derive_gap_windows
from orderbook_pipeline.compaction.increments import Request, compact_batch
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import HOUR_US, Partition
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import SyncRule
from orderbook_pipeline_tests.bronze_factory import (
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    book_mismatch_record,
    tape,
)

HOUR_END = T0 + HOUR_US
DEPTHS = (10, 20)
EV = tape(100)
FUTURES = tape(100, futures=True)


def lost(burst: str = "a", events: list = EV) -> BurstBuilder:  # type: ignore[type-arg]
    """A burst missing events 40..44 on the wire, its book rebuilt at 47."""
    b = BurstBuilder(burst).diffs(events[:40] + events[45:]).l2(events[:40])
    return b.l2(events[47:], gap_detected_first=True, recovered=True)


def _gap(store: Store) -> None:
    lost().snapshot(EV[44].u + 5, EV[46].ts, reason="gap").write(store)


def _reconnect(store: Store) -> None:
    lost().snapshot(EV[46].u, EV[47].ts + 30 * SECOND, reason="reconnect").write(store)


def _seam(store: Store) -> None:
    BurstBuilder("a").received(EV[:40]).write(store)
    BurstBuilder("b").received(EV[50:]).snapshot(EV[50].U, EV[49].ts).write(store)


def _restart(store: Store) -> None:
    lost().write(store)
    b = BurstBuilder("b").diffs(EV[:40] + EV[45:]).l2(EV[:40])
    b.l2(EV[48:], gap_detected_first=True, recovered=True).write(store)


def _healed(store: Store) -> None:
    lost().write(store)
    BurstBuilder("b", ingest_lag_us=400).received(EV[30:60]).write(store)


def _mismatch(store: Store) -> None:
    b = lost().snapshot(EV[44].u + 5, EV[46].ts, reason="book_mismatch")
    record = book_mismatch_record(
        "partial_depth",
        EV[39].u,
        EV[39].ts + 50_000,
        last_verified_update_id=EV[10].u,
        last_verified_ts=EV[10].ts,
    )
    b.add("book_mismatches", record).write(store)


def _futures(store: Store) -> None:
    lost(events=FUTURES).write(store)
    BurstBuilder("b").received(FUTURES[60:]).write(store)


SCENARIOS: dict[str, tuple[Callable[[Store], None], SyncRule]] = {
    "sequence_gap": (_gap, SyncRule.SPOT),
    "reconnect": (_reconnect, SyncRule.SPOT),
    "burst_seam": (_seam, SyncRule.SPOT),
    "exchange_restart": (_restart, SyncRule.SPOT),
    "healed": (_healed, SyncRule.SPOT),
    "book_mismatch": (_mismatch, SyncRule.SPOT),
    "futures": (_futures, SyncRule.FUTURES),
}


def compact(store: Store, cut: int | None) -> None:
    """What a refresh compacts, with the copies it keeps."""
    requests = [
        Request(LANES["l2"], Partition("l2", VENUE, SYMBOL, T0, d), cut, None, L2_COPIES)
        for d in DEPTHS
    ]
    requests.append(
        Request(LANES["diffs"], Partition("diffs", VENUE, SYMBOL, T0), cut, None, DIFF_COPIES)
    )
    requests.append(Request(LANES["snapshots"], Partition("snapshots", VENUE, SYMBOL, T0), cut))
    compact_batch(store, requests)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "data"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_windows_from_silver_equal_windows_from_bronze(store: Store, name: str) -> None:
    build, rule = SCENARIOS[name]
    build(store)
    expected = derive_gap_windows(store, VENUE, SYMBOL, T0, rule, now_us=HOUR_END)
    # Compacted in two refreshes (a cut in the middle of the tape), then the hour closed.
    compact(store, EV[55].ts - EV[55].ts % 5_000_000)
    compact(store, None)
    inputs = inputs_from_parts(store, VENUE, SYMBOL, T0, min(DEPTHS), HOUR_END)
    assert inputs is not None
    got = derive_gap_windows(store, VENUE, SYMBOL, T0, rule, now_us=HOUR_END, inputs=inputs)
    assert got.to_pylist() == expected.to_pylist()
    assert got.num_rows >= (0 if name == "healed" else 1)


def test_a_cut_inside_the_hour_judges_up_to_the_cut(store: Store) -> None:
    """With bronze only up to the cut, both readings agree at that cut too."""
    _gap(store)
    cut = EV[-1].ts + 5_000_000 - EV[-1].ts % 5_000_000
    compact(store, cut)
    inputs = inputs_from_parts(store, VENUE, SYMBOL, T0, min(DEPTHS), cut)
    assert inputs is not None
    got = derive_gap_windows(store, VENUE, SYMBOL, T0, SyncRule.SPOT, now_us=cut, inputs=inputs)
    expected = derive_gap_windows(store, VENUE, SYMBOL, T0, SyncRule.SPOT, now_us=cut)
    assert got.to_pylist() == expected.to_pylist() and got.num_rows == 1


def test_silver_not_up_to_the_cut_or_without_copies_is_not_used(store: Store) -> None:
    _gap(store)
    compact(store, EV[30].ts)
    later = EV[60].ts
    assert inputs_from_parts(store, VENUE, SYMBOL, T0, 10, later) is None  # not that far yet
    # Parts written without copies (as before they were kept): bronze must be read.
    other = open_store(str(Path(store.local_base()) / "other"))
    _gap(other)
    compact_batch(
        other,
        [
            Request(LANES[lane], Partition(lane, VENUE, SYMBOL, T0, d), None)
            for lane, d in (("l2", 10), ("diffs", None), ("snapshots", None))
        ],
    )
    assert inputs_from_parts(other, VENUE, SYMBOL, T0, 10, HOUR_END) is None
