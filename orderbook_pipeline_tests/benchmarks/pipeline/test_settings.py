"""The benchmark's settings: percentiles, and the environment the stack is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pipeline import settings

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

L2 = "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-12-02/hour=10/depth=10"
HOUR_START = 1_796_205_600.0  # 2026-12-02 10:00 UTC
HOUR_US = int(HOUR_START * 1e6)


def test_percentile_is_nearest_rank_and_none_for_nothing() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert settings.percentile(values, 0.0) == 1.0
    assert settings.percentile(values, 0.5) == 3.0
    assert settings.percentile(values, 0.95) == 5.0
    assert settings.percentile([], 0.5) is None
    s = settings.spread(range(1, 101))
    assert (s["n"], s["p10"], s["p50"], s["p95"], s["max"]) == (100, 11, 51, 95, 100)
    assert settings.spread([])["max"] is None


def test_env_names_follow_the_loaders_rule() -> None:
    assert (
        settings.env_name("venues.binance-spot.sim_port") == "OBP__VENUES__BINANCE_SPOT__SIM_PORT"
    )
    env = settings.stack_env(
        settings.Settings(interval_s=30, sets=("capture.file_seconds=10",)),
        Path("/h"),
        ["BTCUSDT"],
        9999,
        "m",
    )
    assert env["OBP__ORCHESTRATION__REFRESH_INTERVAL_SECONDS"] == "30"
    assert env["OBP__CAPTURE__FILE_SECONDS"] == "10"
    assert env["DAGSTER_HOME"] == "/h/.dagster"
    all_lanes = settings.lanes_value("all").split(",")
    assert {"l2", "diffs", "trades"} <= set(all_lanes)
