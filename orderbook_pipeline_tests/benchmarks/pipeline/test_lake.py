"""Lags from bronze landings and silver states, and what a bronze path says."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pipeline import lake, runs

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

L2 = "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-12-02/hour=10/depth=10"
HOUR_START = 1_796_205_600.0  # 2026-12-02 10:00 UTC
HOUR_US = int(HOUR_START * 1e6)


def test_a_file_is_consumed_by_the_first_state_whose_cut_is_past_its_largest_time() -> None:
    a, b = f"{L2}/burst1-0.avro", f"{L2}/burst1-1.avro"
    consumed: dict[str, float] = {}
    largest: dict[str, int] = {}
    # First state: a read whole (its last row before the cut), b read only in part.
    first = lake.StateSnapshot(100.0, "silver/x/_parts.json", 2_000, {a: 1_999, b: 2_500})
    assert lake.record_consumption(consumed, largest, first) == 1
    assert consumed == {a: 100.0}
    # Equal to the cut is not below it: still pending.
    second = lake.StateSnapshot(130.0, "silver/x/_parts.json", 2_500, {a: 1_999, b: 2_500})
    assert lake.record_consumption(consumed, largest, second) == 0
    third = lake.StateSnapshot(160.0, "silver/x/_parts.json", 3_000, {a: 1_999, b: 2_500})
    assert lake.record_consumption(consumed, largest, third) == 1
    assert consumed == {a: 100.0, b: 160.0}  # a keeps its first time
    assert largest == {a: 1_999, b: 2_500}


def test_landing_lags_censor_recent_files_and_count_old_pending_ones_by_age() -> None:
    landings = {"done": 0.0, "late": 10.0, "pending": 20.0, "recent": 95.0, "recent_done": 90.0}
    done_at = {"done": 30.0, "late": 80.0, "recent_done": 92.0, "after_end": 0.0}
    lags = lake.landing_lags(landings, done_at, end=100.0, horizon=20.0)
    # Landed more than 20 s before the end: judged; the pending one counts with its age (80 s).
    assert sorted(lags.lags) == [30.0, 70.0, 80.0]
    assert (lags.done, lags.pending_over, lags.unjudged) == (2, 1, 2)
    assert lags.oldest_pending_s == 80.0
    figures = lags.figures()
    assert figures["p50"] == 70.0 and figures["max"] == 80.0


def test_a_file_done_after_the_end_is_still_pending_at_the_end() -> None:
    lags = lake.landing_lags({"f": 0.0}, {"f": 150.0}, end=100.0, horizon=10.0)
    assert (lags.done, lags.pending_over, lags.lags) == (0, 1, [100.0])


def test_covered_at_is_the_first_refresh_judging_past_the_file() -> None:
    judged = [(10.0, 1_000), (20.0, 2_000), (30.0, 3_000)]
    assert lake.covered_at(999, judged) == 10.0
    assert lake.covered_at(1_000, judged) == 20.0  # judged_until is exclusive
    assert lake.covered_at(3_000, judged) is None


def test_hour_end_and_key_come_from_the_bronze_path() -> None:
    path = f"{L2}/burst1-0.avro"
    assert lake.hour_end_of(path) == HOUR_START + 3600
    assert runs.hour_key_of(path) == "2026-12-02-10:00"
    assert lake.hour_end_of("bronze/l2/nothing.avro") is None
