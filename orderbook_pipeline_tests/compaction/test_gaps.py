"""Gap windows: every loss of continuity in the union of bursts, with its cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orderbook_pipeline.compaction.gaps import (
    GAP_CAUSES,
    GAP_SCHEMA,
    derive_gap_windows,
    gap_windows_path,
    read_gap_windows,
    write_gap_windows,
)
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.roots import open_store
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

MID_HOUR = T0 + HOUR_US // 2  # "now" inside the hour: no tail hole is judged yet
SPOT = SyncRule.SPOT


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "data"))


def windows(
    store: Store,
    rule: SyncRule = SPOT,
    now: int = MID_HOUR,
    venue: str = VENUE,
    began: bool = False,
) -> list[dict[str, Any]]:
    table = derive_gap_windows(
        store, venue, SYMBOL, T0, rule, now_us=now, stream_began_this_hour=began
    )
    assert table.schema == GAP_SCHEMA
    rows = table.to_pylist()
    for r in rows:
        r["from_ts"], r["to_ts"] = _us(r["from_ts"]), _us(r["to_ts"])
        assert r["cause"] in GAP_CAUSES
        assert (r["venue"], r["symbol"], _us(r["hour_start"])) == (
            venue,
            SYMBOL,
            T0,
        )
    return rows


def _us(dt: Any) -> int:
    return round(dt.timestamp() * 1e6)


def lost_range(ev: list[Ev], *, rebuilt_at: int = 47) -> BurstBuilder:
    """One burst missing events 40..44 on the wire; the book is rebuilt and resumes at 47."""
    b = BurstBuilder("a").diffs(ev[:40] + ev[45:]).l2(ev[:40])
    return b.l2(ev[rebuilt_at:], gap_detected_first=True, recovered=True)


def expect_window(ev: list[Ev], i: int, j: int) -> dict[str, int]:
    return {
        "from_update_id": ev[i].u + 1,
        "to_update_id": ev[j].U - 1,
        "from_ts": ev[i].ts,
        "to_ts": ev[j].ts,
    }


def pick(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("from_update_id", "to_update_id", "from_ts", "to_ts")}


def test_continuous_hour_has_no_window(store: Store) -> None:
    BurstBuilder("a").received(tape(100)).write(store)
    assert windows(store) == []


def test_sequence_gap_with_exact_ids_and_times(store: Store) -> None:
    ev = tape(100)
    lost_range(ev).snapshot(ev[44].u + 5, ev[46].ts, reason="gap").write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 47)
    assert (w["cause"], w["bursts"]) == ("sequence_gap", "a")


@pytest.mark.parametrize(
    ("delay_us", "cause"),
    [(0, "reconnect"), (59 * SECOND, "reconnect"), (61 * SECOND, "sequence_gap")],
)
def test_reconnect_snapshot_up_to_60s_after_the_window(
    store: Store, delay_us: int, cause: str
) -> None:
    ev = tape(100)
    lost_range(ev).snapshot(ev[46].u, ev[47].ts + delay_us, reason="reconnect").write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 47)
    assert w["cause"] == cause


def test_a_gap_resync_followed_by_a_reconnect_is_a_sequence_gap(store: Store) -> None:
    """The snapshot that rebuilt the book (reason gap) decides, not a later reconnect."""
    ev = tape(100)
    b = lost_range(ev).snapshot(ev[44].u + 5, ev[46].ts, reason="gap")
    b.snapshot(ev[80].u, ev[80].ts, reason="reconnect").write(store)
    [w] = windows(store)
    assert w["cause"] == "sequence_gap"


def test_burst_seam_when_no_burst_spans_the_hole(store: Store) -> None:
    ev = tape(100)
    BurstBuilder("a").received(ev[:40]).write(store)
    BurstBuilder("b").received(ev[50:]).snapshot(ev[50].U, ev[49].ts).write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 50)
    assert (w["cause"], w["bursts"]) == ("burst_seam", "a,b")


def test_burst_seam_when_diffs_stitch_but_the_next_burst_was_syncing(store: Store) -> None:
    ev = tape(100)
    BurstBuilder("a").received(ev[:40]).write(store)
    BurstBuilder("b").diffs(ev[40:]).l2(ev[45:]).write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 45)
    assert w["cause"] == "burst_seam"


def test_exchange_restart_when_overlapping_bursts_miss_the_same_ids(store: Store) -> None:
    ev = tape(100)
    lost_range(ev).write(store)
    b = BurstBuilder("b").diffs(ev[:40] + ev[45:]).l2(ev[:40])
    b.l2(ev[48:], gap_detected_first=True, recovered=True).write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 47)
    assert (w["cause"], w["bursts"]) == ("exchange_restart", "a,b")


def test_another_burst_heals_the_loss(store: Store) -> None:
    ev = tape(100)
    lost_range(ev).write(store)
    BurstBuilder("b").received(ev[30:60]).write(store)
    assert windows(store) == []


SLOW_TAPE = {"step_us": 500_000}  # 100 events over 50 s: the window 39 -> 60 lasts 10.5 s


@pytest.mark.parametrize(
    ("snapshots", "cause"),
    [
        ([{"took_us": 6 * SECOND}], "rate_limited"),
        ([{"took_us": 5 * SECOND}], "sequence_gap"),  # 5 s exactly is not over 5 s
        ([{"used_weight": 4800}], "rate_limited"),  # 80 % of binance-spot's 6000
        ([{"used_weight": 4799}], "sequence_gap"),
        ([{}, {"offset_us": SECOND}], "stale_snapshot"),
        ([{}], "sequence_gap"),
        ([{"burst": "other", "took_us": 6 * SECOND}], "sequence_gap"),  # not a spanning burst
    ],
)
def test_continuous_diffs_without_an_in_sync_book(
    store: Store, snapshots: list[dict[str, Any]], cause: str
) -> None:
    ev = tape(100, **SLOW_TAPE)
    a = BurstBuilder("a").diffs(ev).l2(ev[:40]).l2(ev[60:], gap_detected_first=True, recovered=True)
    other = BurstBuilder("other").received(ev[:5])
    for s in snapshots:
        target = other if s.get("burst") == "other" else a
        kwargs = {k: v for k, v in s.items() if k in ("took_us", "used_weight")}
        target.snapshot(ev[58].u, ev[41].ts + s.get("offset_us", 0), reason="gap", **kwargs)
    a.write(store)
    other.write(store)
    [w] = windows(store)
    assert pick(w) == expect_window(ev, 39, 60)
    assert w["cause"] == cause


def test_holes_at_the_hour_edges(store: Store) -> None:
    ev = [Ev(1000, 1002, None, T0 + 30 * SECOND), Ev(1003, 1005, None, H1 - 30 * SECOND)]
    BurstBuilder("a").received(ev).write(store)
    lead = {
        "from_update_id": None,
        "to_update_id": None,
        "from_ts": T0,
        "to_ts": ev[0].ts,
        "cause": "burst_seam",
        "bursts": "a",
    }
    tail = {
        "from_update_id": None,
        "to_update_id": None,
        "from_ts": ev[1].ts,
        "to_ts": H1,
        "cause": "burst_seam",
        "bursts": "a",
    }
    strip = [{k: w[k] for k in lead} for w in windows(store, now=H1)]
    assert strip == [lead, tail]
    # The current hour: its end is not judged yet.
    assert [{k: w[k] for k in lead} for w in windows(store, now=H1 - 1)] == [lead]
    # The stream's first captured hour: before its first record, nothing was being captured.
    first_hour = windows(store, now=H1, began=True)
    assert [{k: w[k] for k in lead} for w in first_hour] == [tail]


def test_records_within_10s_of_the_edges_are_no_hole(store: Store) -> None:
    ev = [Ev(1000, 1002, None, T0 + 10 * SECOND), Ev(1003, 1005, None, H1 - 10 * SECOND)]
    BurstBuilder("a").received(ev).write(store)
    assert windows(store, now=H1) == []


def test_empty_hour_is_no_capture(store: Store) -> None:
    BurstBuilder("a").received(tape(10, t0=H1 + SECOND)).write(store)  # next hour only
    full = windows(store, now=H1 + 5 * SECOND)
    assert [(w["from_ts"], w["to_ts"], w["cause"], w["from_update_id"]) for w in full] == [
        (T0, H1, "no_capture", None)
    ]
    current = windows(store, now=T0 + 600 * SECOND)
    assert [(w["from_ts"], w["to_ts"], w["cause"]) for w in current] == [
        (T0, T0 + 600 * SECOND, "no_capture")
    ]
    assert windows(store, now=T0) == []  # the hour has not begun


def test_bronze_without_any_in_sync_record_is_one_window(store: Store) -> None:
    BurstBuilder("a").diffs(tape(50)).write(store)
    [w] = windows(store, now=H1)
    assert (w["from_ts"], w["to_ts"], w["cause"], w["bursts"]) == (T0, H1, "burst_seam", "a")


def test_usdm_chains_by_pu(store: Store) -> None:
    venue = "binance-usdm"
    ev = tape(100, futures=True)
    BurstBuilder("a", venue=venue).received(ev).write(store)
    assert windows(store, SyncRule.FUTURES, venue=venue) == []
    # The same ids under the spot rule skip ids at every event: the rule is what decides.
    assert len(windows(store, SPOT, venue=venue)) == 99


def test_usdm_window_ends_at_pu(store: Store) -> None:
    venue = "binance-usdm"
    ev = tape(100, futures=True)
    b = BurstBuilder("a", venue=venue).diffs(ev[:40] + ev[45:]).l2(ev[:40])
    b.l2(ev[47:], gap_detected_first=True, recovered=True).write(store)
    [w] = windows(store, SyncRule.FUTURES, venue=venue)
    assert pick(w) == {
        "from_update_id": ev[39].u + 1,
        "to_update_id": ev[47].pu,
        "from_ts": ev[39].ts,
        "to_ts": ev[47].ts,
    }
    assert w["cause"] == "sequence_gap"


def test_binance_us_needs_exact_succession(store: Store) -> None:
    ev = tape(3)
    ev[2] = Ev(ev[1].u, ev[1].u + 2, None, ev[2].ts)  # overlaps the previous event by one id
    BurstBuilder("a").received(ev).write(store)
    assert windows(store, SyncRule.SPOT) == []  # spot accepts U <= u + 1
    assert len(windows(store, SyncRule.SPOT_LEGACY)) == 1


def test_write_and_read_windows_even_when_empty(store: Store) -> None:
    BurstBuilder("a").received(tape(100)).write(store)
    empty = derive_gap_windows(store, VENUE, SYMBOL, T0, SPOT, now_us=MID_HOUR)
    rel = write_gap_windows(store, empty, VENUE, SYMBOL, T0)
    assert rel == gap_windows_path(VENUE, SYMBOL, T0)
    assert (
        rel
        == f"silver/gap_windows/market={VENUE}/symbol={SYMBOL}/dt=2026-01-01/hour=00/data.parquet"
    )
    assert store.exists(rel)
    assert read_gap_windows(store, VENUE, SYMBOL, T0).equals(empty)
    full = derive_gap_windows(store, VENUE, SYMBOL, T0, SPOT, now_us=H1 + 1)
    write_gap_windows(store, full, VENUE, SYMBOL, T0)
    assert read_gap_windows(store, VENUE, SYMBOL, T0).equals(full) and full.num_rows == 1
    assert read_gap_windows(store, VENUE, SYMBOL, H1).num_rows == 0
    assert store.stray_temporaries() == []
