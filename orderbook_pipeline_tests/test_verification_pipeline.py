"""Book verification end to end: the bundled exchange corrupts one level of the book it streams,
the capture's next deep snapshot catches it, and the hour's refresh run names the cause
`book_mismatch` in its gap windows and fails the `book_verified` check for that hour, naming the
stream (and only that check's verdict is about it: a clean hour passes)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import dagster as dg

from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.partitions import hour_key
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.layout import hour_start_us
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT

from .capture.conftest import SIM_DEFAULTS
from .capture.truth import _us
from .dagster_helpers import definitions, evaluations, materializations, pipeline_config, refresh

SYMBOL = "BTCUSDT"
STREAM = f"{BINANCE_SPOT.name}.{SYMBOL}"
LANES = ["l2", "diffs", "partial_depth", "book_ticker", "deep_snapshots"]


def _config(root: Path, port: int) -> PipelineConfig:
    """One configuration for the capture and the refresh: spot BTCUSDT on the bundled
    exchange, deep snapshots every second of the whole 400-level book (the phantom level is
    always in range)."""
    venue = {
        "symbols": [SYMBOL],
        "depths": [5, 20],
        "lanes": LANES,
        "deep_snapshot_interval_s": 1.0,
        "deep_snapshot_limit": 500,
        "sim_port": port,
    }
    return pipeline_config(
        str(root / "lake"), str(root / "marts.duckdb"), {BINANCE_SPOT.name: venue}
    )


def _capture(sim: SimulatorThread, config: PipelineConfig, corrupt: bool) -> None:
    settings = config.capture_settings(BINANCE_SPOT.name, duration_s=5.0)
    timer = threading.Timer(2.0, sim.inject, ("corrupt_level",), {"symbol": SYMBOL, "distance": 50})
    if corrupt:
        timer.start()
    try:
        asyncio.run(run_burst(settings))
    finally:
        timer.cancel()


def _refresh(config: PipelineConfig, hour: int) -> tuple[dict[str, dg.AssetCheckEvaluation], Any]:
    """The hour's refresh run of silver and its checks (the whole hour: the capture is over;
    the marts are not this test's business); its check evaluations by name, and the gap
    windows' materialization."""
    defs = definitions(config)
    silver = [k for k in defs.resolve_all_asset_keys() if k.path[0] == "silver"]
    with dg.instance_for_test() as instance:
        result = refresh(defs, instance, hour, selection=silver)
    assert result.success
    found = {check: e for (_asset, check), e in evaluations(result).items()}
    assert {e.partition for e in found.values()} == {hour_key(hour)}
    return found, materializations(result)["silver/gap_windows"]


def _causes(config: PipelineConfig, hour: int) -> list[str]:
    gaps = read_gap_windows(open_store(config.data_root), BINANCE_SPOT.name, SYMBOL, hour)
    return gaps.column("cause").to_pylist()


def test_a_corrupted_level_fails_book_verified_for_its_hour(tmp_path: Path) -> None:
    with SimulatorThread(venue=BINANCE_SPOT, symbols=[SYMBOL], **SIM_DEFAULTS) as sim:
        corrupt = _config(tmp_path / "corrupt", sim.port)
        _capture(sim, corrupt, corrupt=True)
        clean = _config(tmp_path / "clean", sim.port)
        _capture(sim, clean, corrupt=False)

    mismatches = list(iter_lane_records(open_store(corrupt.data_root), "book_mismatches"))
    mismatch = next(m for m in mismatches if m["source"] == "deep_snapshot")
    hour = hour_start_us(_us(mismatch["detected_ts"]))
    checks, gaps = _refresh(corrupt, hour)
    book = checks["book_verified"]
    assert book.passed is False
    assert book.asset_key == dg.AssetKey(["silver", "book_mismatches"])
    assert book.metadata["streams_judged"].value == 1
    assert book.metadata["mismatches"].value >= 1
    assert list(book.metadata["failed_streams"].value) == [BINANCE_SPOT.name]
    assert list(book.metadata["failed_streams"].value[BINANCE_SPOT.name]) == [SYMBOL]
    assert [r.data["stream"] for r in book.metadata["failures"].value.records] == [STREAM]
    assert "book_mismatch" in _causes(corrupt, hour)
    assert gaps.metadata["causes"].value.get("book_mismatch", 0) >= 1
    assert checks["sequence_continuity"].passed is False  # the rebuild left a window, named above
    assert (
        "book_mismatch"
        in checks["sequence_continuity"].metadata["failures"].value.records[0].data["summary"]
    )

    clean_hour = hour_start_us(
        _us(next(iter_lane_records(open_store(clean.data_root), "deep_snapshots"))["response_ts"])
    )
    clean_checks, clean_gaps = _refresh(clean, clean_hour)
    assert clean_checks["book_verified"].passed is True
    assert clean_checks["book_verified"].metadata["streams_judged"].value == 1
    assert clean_checks["book_verified"].metadata["deep_snapshots_matched"].value >= 1
    assert "failed_streams" not in clean_checks["book_verified"].metadata
    assert "book_mismatch" not in _causes(clean, clean_hour)
    assert "book_mismatch" not in clean_gaps.metadata["causes"].value
