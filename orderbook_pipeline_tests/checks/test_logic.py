"""Pure check logic: every pass/fail boundary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from orderbook_pipeline.checks.logic import (
    CheckOutcome,
    bronze_distinct_l2_count,
    continuity,
    coverage,
    no_crossed_book,
    reconcile,
)
from orderbook_pipeline.compaction.gaps import GAP_CAUSES, GAP_SCHEMA
from orderbook_pipeline.compaction.silver import L2_SCHEMA, compact_l2, read_silver_l2
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SECOND,
    SYMBOL,
    T0,
    VENUE,
    BurstBuilder,
    Ev,
    l2_record,
    tape,
)


def gaps(*windows: tuple[Any, ...]) -> pa.Table:
    """Windows as (from_id, to_id, from_ts, to_ts, cause)."""
    rows = [
        {
            "venue": VENUE,
            "symbol": SYMBOL,
            "hour_start": T0,
            "from_update_id": f,
            "to_update_id": t,
            "from_ts": t0,
            "to_ts": t1,
            "cause": cause,
            "bursts": "a",
        }
        for f, t, t0, t1, cause in windows
    ]
    return pa.Table.from_pylist(rows, schema=GAP_SCHEMA)


def l2(times_us: list[int]) -> pa.Table:
    rows = [
        l2_record(Ev(1000 + 3 * i, 1002 + 3 * i, None, t), 10, "a") for i, t in enumerate(times_us)
    ]
    return pa.Table.from_pylist(rows, schema=L2_SCHEMA)


def test_outcome_is_frozen() -> None:
    out = reconcile(1, 1)
    assert isinstance(out, CheckOutcome)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.passed = False  # type: ignore[misc]


def test_continuity_passes_without_windows() -> None:
    out = continuity(gaps())
    assert out.passed
    assert out.metadata["gap_count"] == 0 and out.metadata["missing_update_ids"] == 0
    assert out.metadata["first_gap_from_update_id"] is None


def test_continuity_fails_on_any_window_with_metadata() -> None:
    out = continuity(
        gaps(
            (2000, 2009, T0 + 20 * SECOND, T0 + 21 * SECOND, "reconnect"),
            (1500, 1519, T0 + 10 * SECOND, T0 + 12 * SECOND, "sequence_gap"),
            (None, None, T0 + 3000 * SECOND, H1, "burst_seam"),
        )
    )
    assert not out.passed
    m = out.metadata
    assert m["gap_count"] == 3 and m["missing_update_ids"] == 30  # null ids count no ids
    assert (m["first_gap_from_update_id"], m["first_gap_to_update_id"]) == (1500, 1519)
    assert (m["first_gap_from_ts"], m["first_gap_to_ts"]) == (
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:00:12Z",
    )
    assert m["first_gap_cause"] == "sequence_gap"
    assert {c: m[f"causes_{c}"] for c in GAP_CAUSES if m[f"causes_{c}"]} == {
        "reconnect": 1,
        "sequence_gap": 1,
        "burst_seam": 1,
    }
    assert "3 gap window(s)" in out.summary
    assert not continuity(gaps((None, None, T0, H1, "no_capture"))).passed


def test_coverage_exactly_at_threshold_passes_and_just_below_fails() -> None:
    # A complete hour whose records span 3564 s: 3564 / 3600 is exactly 0.99.
    at = coverage(l2([T0, T0 + 3564 * SECOND]), gaps(), T0, H1 + 1)
    assert at.passed and at.metadata["coverage_ratio"] == 0.99
    assert (at.metadata["in_sync_seconds"], at.metadata["denominator_seconds"]) == (3564.0, 3600.0)
    below = coverage(l2([T0, T0 + 3564 * SECOND - 1]), gaps(), T0, H1 + 1)
    assert not below.passed and below.metadata["threshold"] == 0.99
    assert coverage(l2([T0, T0 + 1800 * SECOND]), gaps(), T0, H1, threshold=0.5).passed


def test_coverage_subtracts_gap_windows_once_and_ignores_edge_holes() -> None:
    table = l2([T0 + 10 * SECOND, T0 + 3590 * SECOND])
    windows = gaps(
        (None, None, T0, T0 + 10 * SECOND, "burst_seam"),  # before the first record: outside
        (1, 2, T0 + 100 * SECOND, T0 + 130 * SECOND, "sequence_gap"),
        (3, 4, T0 + 120 * SECOND, T0 + 140 * SECOND, "reconnect"),  # overlaps the previous one
        (None, None, T0 + 3590 * SECOND, H1, "burst_seam"),
    )
    out = coverage(table, windows, T0, H1)
    assert out.metadata["in_sync_seconds"] == 3580 - 40
    assert out.metadata["coverage_ratio"] == pytest.approx(3540 / 3600)
    assert not out.passed


def test_coverage_of_the_current_hour_counts_up_to_the_last_landed_record() -> None:
    now = T0 + 700 * SECOND  # the last 100 s have not landed yet: not a loss yet
    table = l2([T0 + 1 * SECOND, T0 + 600 * SECOND])
    out = coverage(table, gaps(), T0, now)
    assert out.metadata["denominator_seconds"] == 600.0  # not 3600, nor 700
    assert out.metadata["in_sync_seconds"] == 599.0
    assert out.passed  # 599 / 600 = 0.9983
    assert not coverage(table, gaps(), T0, now, threshold=0.999).passed


def test_coverage_of_a_completed_hour_counts_its_trailing_hole() -> None:
    table = l2([T0 + 1 * SECOND, T0 + 1800 * SECOND])
    out = coverage(table, gaps(), T0, H1 + SECOND)
    assert out.metadata["denominator_seconds"] == 3600.0
    assert not out.passed


def test_coverage_in_the_stream_first_hour_starts_at_its_first_record() -> None:
    table = l2([T0 + 1200 * SECOND, T0 + 3599 * SECOND])  # capture began at 20 minutes
    began = coverage(table, gaps(), T0, H1 + SECOND, stream_began_this_hour=True)
    assert began.metadata["denominator_seconds"] == 2400.0
    assert began.passed  # 2399 / 2400
    assert not coverage(table, gaps(), T0, H1 + SECOND).passed  # a later hour: a real hole


def test_coverage_of_an_empty_or_unbegun_hour() -> None:
    empty = coverage(l2([]), gaps((None, None, T0, H1, "no_capture")), T0, H1)
    assert not empty.passed and empty.metadata["coverage_ratio"] == 0.0
    assert coverage(l2([]), gaps(), T0, T0).passed  # nothing elapsed yet


def book(
    bid: float, ask: float, uid: int, *, bids: bool = True, asks: bool = True
) -> dict[str, Any]:
    """A record whose best bid/ask are `bid`/`ask` (levels best first); a side may be empty."""
    rec = l2_record(Ev(uid, uid, None, T0 + uid), 10, "a")
    rec["levels"] = [
        {"side": "bid", "px": bid - k, "qty": 1.0} for k in range(2 if bids else 0)
    ] + [{"side": "ask", "px": ask + k, "qty": 1.0} for k in range(2 if asks else 0)]
    return rec


def test_no_crossed_book_boundaries() -> None:
    def check(*recs: dict[str, Any]) -> Any:
        return no_crossed_book(pa.Table.from_pylist(list(recs), schema=L2_SCHEMA))

    ok = check(book(99.99, 100.0, 1), book(99.0, 101.0, 2))
    assert ok.passed and ok.metadata["crossed_count"] == 0 and ok.metadata["records_checked"] == 2
    locked = check(book(99.99, 100.0, 1), book(100.0, 100.0, 2), book(100.5, 100.0, 3))
    assert not locked.passed  # best bid == best ask already fails
    assert locked.metadata["crossed_count"] == 2 and locked.metadata["first_crossed_update_id"] == 2
    one_sided = check(book(100.0, 0, 1, asks=False), book(0, 100.0, 2, bids=False))
    assert one_sided.passed
    assert no_crossed_book(L2_SCHEMA.empty_table()).passed


def test_reconcile() -> None:
    assert reconcile(100, 100).passed
    under, over = reconcile(100, 99), reconcile(100, 101)
    assert not under.passed and under.metadata["difference"] == -1
    assert not over.passed and over.metadata["difference"] == 1


def test_bronze_distinct_count_reconciles_with_silver(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "data"))
    ev = tape(100)
    BurstBuilder("a").received(ev[:60]).write(store)
    BurstBuilder("b").received(ev[40:]).write(store)
    BurstBuilder("c", depths=(50,)).received(ev[:10]).write(store)
    counts = bronze_distinct_l2_count(store, VENUE, SYMBOL, T0)
    assert counts == {10: 100, 20: 100, 50: 10}
    compact_l2(store, VENUE, SYMBOL, T0)
    for depth, n in counts.items():
        assert reconcile(n, read_silver_l2(store, VENUE, SYMBOL, T0, depth).num_rows).passed
    assert bronze_distinct_l2_count(store, VENUE, SYMBOL, T0 + HOUR_US) == {}


def test_parts_count_the_bronze_they_were_compacted_from(tmp_path: Path) -> None:
    """Each part's state counts the distinct bronze keys below its cut apart from the dedup,
    so silver reconciles with exactly the bronze it holds while bursts keep adding more."""
    store = open_store(str(tmp_path / "data"))
    ev = tape(100)  # 10 s of events from T0 + 1 s
    BurstBuilder("a").received(ev[:60]).write(store)
    first = compact_l2(store, VENUE, SYMBOL, T0, cut_us=T0 + 4 * SECOND)[10].state
    assert first is not None and first.rows == first.bronze_keys == 30
    BurstBuilder("b").received(ev[50:]).write(store)  # a running burst publishes more bronze
    state = compact_l2(store, VENUE, SYMBOL, T0)[10].state
    assert state is not None
    assert read_silver_l2(store, VENUE, SYMBOL, T0, 10).num_rows == state.rows == 100
    assert state.bronze_keys == bronze_distinct_l2_count(store, VENUE, SYMBOL, T0)[10] == 100
    assert state.bronze_rows == 110  # ten events came twice
    assert reconcile(state.bronze_keys, state.rows).passed
