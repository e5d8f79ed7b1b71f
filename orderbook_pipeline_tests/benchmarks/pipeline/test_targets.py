"""Target verdicts from the headline figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pipeline import targets

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

L2 = "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-12-02/hour=10/depth=10"
HOUR_START = 1_796_205_600.0  # 2026-12-02 10:00 UTC
HOUR_US = int(HOUR_START * 1e6)


def test_queue_bounded_allows_slack_but_not_growth() -> None:
    assert targets.queue_bounded([0, 1, 0, 1, 0, 2])
    assert targets.queue_bounded([])
    assert not targets.queue_bounded([0, 0, 0, 1, 3, 5])


def _verdicts(h: targets.Headline) -> dict[str, str]:
    return {t.name: t.verdict for t in targets.targets(h)}


def test_targets_judge_each_row_and_say_what_was_not_observed() -> None:
    h = targets.Headline(
        interval_s=300,
        drops_missing=0,
        drops_in_span=1000,
        stall_resyncs=1,
        lag_p95_s={"silver": 590.0, "gap_windows": 601.0, "marts": None, "checks": 100.0},
        closed_hours_s={"2026-12-02-10:00": 250.0},
        orchestration_pct=55.0,
        queued=[0, 1, 0],
        home_mb_per_stream_day=0.5,
        ui_p95_s={"catalog": 0.2, "partitions": 1.0},
        stop_s=4.0,
        failed_runs=["refresh_job 1234"],
    )
    v = _verdicts(h)
    assert v["client drop rate"] == "MET"
    assert v["resyncs caused by stalls"] == "NOT MET"
    assert v["bronze -> silver p95, hour in progress"] == "MET"
    assert v["bronze -> gap windows p95, hour in progress"] == "NOT MET"
    assert v["bronze -> marts p95, hour in progress"] == "NOT OBSERVED"
    assert v["closed hour: end -> final refresh done"] == "MET"
    assert v["orchestration CPU"] == "NOT MET"
    assert v["queued runs"] == "MET"
    assert v["DAGSTER_HOME growth"] == "MET"
    assert v["UI catalog query p95"] == "MET"
    assert v["UI partitions query p95"] == "NOT MET"  # under a second, strictly
    assert v["stop: Ctrl-C as run.sh -> all processes gone"] == "MET"
    assert v["failed runs"] == "NOT MET"
    canceled = targets.Headline(interval_s=300, canceled_runs=["refresh_job 5678"])
    assert _verdicts(canceled)["failed runs"] == "MET"  # a stop may cancel a refresh


def test_a_closed_hour_without_a_final_refresh_is_not_met() -> None:
    h = targets.Headline(interval_s=300, closed_hours_s={"a": 100.0, "b": None})
    assert _verdicts(h)["closed hour: end -> final refresh done"] == "NOT MET"
    assert _verdicts(targets.Headline(interval_s=300))[
        "closed hour: end -> final refresh done"
    ] == ("NOT OBSERVED")
    stopped = targets.Headline(interval_s=300, stop_s=None, stop_notes="SIGKILLed: ['1 dagster']")
    assert _verdicts(stopped)["stop: Ctrl-C as run.sh -> all processes gone"] == "NOT MET"
