"""Gap windows of cause book_mismatch: the rebuild after a mismatch, and the suspect span."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderbook_pipeline.compaction.gaps import GAP_CAUSES
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline_tests.bronze_factory import (
    H1,
    SECOND,
    T0,
    BurstBuilder,
    book_mismatch_record,
    tape,
)
from orderbook_pipeline_tests.compaction.test_gaps import (
    expect_window,
    lost_range,
    pick,
    windows,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "data"))


def test_book_mismatch_is_a_gap_cause() -> None:
    assert "book_mismatch" in GAP_CAUSES


def test_the_rebuild_after_a_mismatch_and_the_suspect_span_are_book_mismatch(
    store: Store,
) -> None:
    """Burst a verified its book at ev[10], found it wrong at ev[39] (+0.05 s), dropped it and
    rebuilt it at ev[47] (its diffs lost 40..44: on its own a sequence gap)."""
    ev = tape(100)
    detected = ev[39].ts + 50_000
    b = lost_range(ev).snapshot(ev[44].u + 5, ev[46].ts, reason="book_mismatch")
    b.add(
        "book_mismatches",
        book_mismatch_record(
            "partial_depth",
            ev[39].u,
            detected,
            last_verified_update_id=ev[10].u,
            last_verified_ts=ev[10].ts,
        ),
    ).write(store)
    suspect, rebuild = windows(store)
    assert pick(rebuild) == expect_window(ev, 39, 47)
    assert (rebuild["cause"], rebuild["bursts"]) == ("book_mismatch", "a")
    assert pick(suspect) == {
        "from_update_id": ev[10].u + 1,
        "to_update_id": ev[39].u,
        "from_ts": ev[10].ts,
        "to_ts": detected,
    }
    assert (suspect["cause"], suspect["bursts"]) == ("book_mismatch", "a")


@pytest.mark.parametrize(
    ("before_start_us", "cause"),
    [(0, "book_mismatch"), (900_000, "book_mismatch"), (1_100_000, "sequence_gap")],
)
def test_a_mismatch_up_to_a_second_before_the_break_names_it(
    store: Store, before_start_us: int, cause: str
) -> None:
    ev = tape(100)
    detected = ev[39].ts - before_start_us
    b = lost_range(ev).snapshot(ev[44].u + 5, ev[46].ts, reason="gap")
    b.add("book_mismatches", book_mismatch_record("book_ticker", ev[30].u, detected))
    b.write(store)
    rebuild = [w for w in windows(store) if w["from_update_id"] == ev[39].u + 1]
    assert [w["cause"] for w in rebuild] == [cause]


def test_a_mismatch_of_an_uninvolved_burst_does_not_name_the_break(store: Store) -> None:
    """Burst c ran only at the hour's start: its mismatch inside a's window changes nothing
    there, and its suspect span starts at its first record (no verified state)."""
    ev = tape(100)
    lost_range(ev).snapshot(ev[44].u + 5, ev[46].ts, reason="gap").write(store)
    c = BurstBuilder("c").received(ev[:5])
    c.add("book_mismatches", book_mismatch_record("deep_snapshot", ev[4].u, ev[41].ts)).write(store)
    got = windows(store)
    assert [(w["cause"], w["bursts"]) for w in got] == [
        ("book_mismatch", "c"),
        ("sequence_gap", "a"),
    ]
    assert pick(got[0]) == {
        "from_update_id": ev[0].U,
        "to_update_id": ev[4].u,
        "from_ts": ev[0].ts,
        "to_ts": ev[41].ts,
    }


def test_mismatches_after_one_verified_state_give_one_window(store: Store) -> None:
    ev = tape(100)
    b = BurstBuilder("a").received(ev)
    for source, i in (("partial_depth", 60), ("book_ticker", 61), ("deep_snapshot", 62)):
        rec = book_mismatch_record(
            source, ev[i].u, ev[i].ts, last_verified_update_id=ev[20].u, last_verified_ts=ev[20].ts
        )
        b.add("book_mismatches", rec)
    b.write(store)
    [w] = windows(store)
    assert pick(w) == {
        "from_update_id": ev[20].u + 1,
        "to_update_id": ev[62].u,
        "from_ts": ev[20].ts,
        "to_ts": ev[62].ts,
    }


def test_a_span_reaching_back_from_the_next_hour_is_clipped_to_the_hour(store: Store) -> None:
    ev = tape(30, t0=H1 - 2 * SECOND)  # 20 events before the hour's end, 10 after
    b = BurstBuilder("a").received(ev)
    rec = book_mismatch_record(
        "deep_snapshot",
        ev[25].u,
        ev[25].ts,
        last_verified_update_id=ev[5].u,
        last_verified_ts=ev[5].ts,
    )
    b.add("book_mismatches", rec).write(store)
    this_hour = windows(store, now=H1 + HOUR_US)
    assert [pick(w) for w in this_hour if w["cause"] == "book_mismatch"] == [
        {"from_update_id": ev[5].u + 1, "to_update_id": ev[25].u, "from_ts": ev[5].ts, "to_ts": H1}
    ]
    assert T0 < ev[5].ts < H1 < ev[25].ts
