"""What is read from Dagster's records: each refresh run's least-judged asset."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pipeline import runs

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

L2 = "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-12-02/hour=10/depth=10"
HOUR_START = 1_796_205_600.0  # 2026-12-02 10:00 UTC
HOUR_US = int(HOUR_START * 1e6)


def test_judged_series_takes_each_runs_least_judged_asset_of_a_kind() -> None:
    """Two marts of one run with different cuts: the kind is done only up to the lesser, once
    the run has logged both."""
    hour = "2026-12-02-10:00"
    run = {
        "materializations": [
            {
                "asset": "gold/mart_l2_5s",
                "partition": hour,
                "at": 10.0,
                "meta": {"judged_until": "2026-12-02T10:05:00Z"},
            },
            {
                "asset": "gold/mart_depth_bands_5s",
                "partition": hour,
                "at": 11.0,
                "meta": {"judged_until": "2026-12-02T10:04:00Z"},
            },
            {
                "asset": "silver/gap_windows",
                "partition": hour,
                "at": 9.0,
                "meta": {"judged_until": "2026-12-02T10:05:00Z"},
            },
        ],
        "checks": [
            {"partition": hour, "at": 12.0, "meta": {"judged_until": "2026-12-02T10:05:00Z"}}
        ],
    }
    later = {
        "materializations": [
            {
                "asset": "gold/mart_l2_5s",
                "partition": hour,
                "at": 50.0,
                "meta": {"judged_until": "2026-12-02T10:05:00Z"},
            }
        ],
        "checks": [],
    }
    series = runs.judged_series([later, run])
    until_4 = HOUR_US + 240_000_000
    until_5 = HOUR_US + 300_000_000
    assert series["marts"][hour] == [(11.0, until_4), (50.0, until_5)]
    assert series["gap_windows"][hour] == [(9.0, until_5)]
    assert series["checks"][hour] == [(12.0, until_5)]
