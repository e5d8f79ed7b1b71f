"""The stage benchmarks in quick mode: every figure present and well formed, and the rows each
stage measured are the rows the generator wrote. No timing assertions (machines are noisy)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import stages

QUICK = stages.QUICK
BRONZE_ROWS = QUICK.events * (len(QUICK.depths) + 1)  # L2 of each depth, plus the diffs
DAY_RECORDS = QUICK.events * QUICK.mart_hours
# 5 s buckets of one hour's events, every hour of the day.
DAY_BUCKETS = -(-QUICK.events * QUICK.interval_ms // 5_000) * QUICK.mart_hours


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    bench = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBP_BENCH_DIR", str(bench))  # generated afresh, not a stale cache
        got = stages.figures(quick=True)
    assert (Path(bench) / QUICK.key() / "hour" / "stats.json").exists()
    return got


def _count(text: str, what: str) -> int:
    match = re.search(rf"([\d,]+) {what}", text)
    assert match, f"no '{what}' count in {text!r}"
    return int(match.group(1).replace(",", ""))


def test_every_figure_is_well_formed(figures: list[dict[str, Any]]) -> None:
    assert len(figures) == 6
    for f in figures:
        assert set(f) == {"name", "value", "unit", "target", "met", "notes"}
        assert isinstance(f["name"], str) and f["name"]
        assert isinstance(f["value"], int | float) and f["value"] > 0
        assert isinstance(f["met"], bool)
        assert all(isinstance(f[k], str) and f[k] for k in ("unit", "target", "notes"))
    assert len({f["name"] for f in figures}) == len(figures)
    assert _table_rows(stages._table(figures)) == len(figures)


def _table_rows(table: str) -> int:
    return sum(1 for line in table.splitlines()[2:] if line.startswith("| "))


def test_met_follows_the_targets(figures: list[dict[str, Any]]) -> None:
    for f in figures:
        if f["unit"] == "rows/s":
            assert f["met"] == (f["value"] >= stages.COMPACTION_TARGET_ROWS_S)
        elif f["unit"] == "MB":
            assert f["met"] == (f["value"] < stages.COMPACTION_TARGET_MB)
        else:
            assert f["unit"] == "s CPU"
            assert f["met"] == (f["value"] < stages.MART_TARGET_CPU_S)


def test_each_stage_measured_the_rows_generated(figures: list[dict[str, Any]]) -> None:
    rates = [f for f in figures if f["unit"] == "rows/s" and "bronze rows" in f["notes"]]
    assert len(rates) == 2  # the columnar path and the old one, over the same bronze
    for f in rates:
        assert _count(f["notes"], "bronze rows") == BRONZE_ROWS
        # rows/s is those rows over the slower of the two processes' wall times.
        walls = [float(w) for w in re.findall(r"([\d.]+) s(?: and| wall)", f["notes"])]
        assert len(walls) == 2
        assert f["value"] == pytest.approx(BRONZE_ROWS / max(walls), rel=0.05, abs=50)
    (floor,) = [f for f in figures if f["name"].startswith("silver Parquet write alone")]
    assert _count(floor["notes"], "silver rows") == BRONZE_ROWS  # no duplicates were generated
    (mart,) = [f for f in figures if f["unit"] == "s CPU"]
    assert _count(mart["notes"], "L2 records") == DAY_RECORDS
    assert _count(mart["notes"], "buckets") == DAY_BUCKETS


def test_inconsistent_rows_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage that saw other rows than were generated must fail, not report a speed."""
    good = {"rows_in": BRONZE_ROWS, "rows_out": [QUICK.events] * 4, "wall_s": 1.0}
    bad = {**good, "rows_in": BRONZE_ROWS - 1}
    day = {"records": DAY_RECORDS}
    stages.check_rows(stages.StageResults(QUICK, {}, {**good, "rounds": [good]}, good, day))
    results = stages.StageResults(QUICK, {}, {**good, "rounds": [good, bad]}, good, day)
    with pytest.raises(RuntimeError, match="expected"):
        stages.check_rows(results)
