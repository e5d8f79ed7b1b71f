"""Book verification end to end: the bundled exchange corrupts one level of the book it streams,
the capture's next deep snapshot catches it, and in Dagster the hour's gap windows name the
cause `book_mismatch` and the `book_verified` check fails for that hour (and only that check's
verdict is about it: a clean hour passes)."""

from __future__ import annotations

import asyncio
import threading

import dagster as dg

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.silver import SILVER_LANE_ASSETS, gap_windows, silver_l2
from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.checks.asset_checks import ALL_CHECKS
from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.partitions import partition_key, streams
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.layout import hour_start_us
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.store import open_store
from orderbook_pipeline.venues import BINANCE_SPOT

from .capture.conftest import SIM_DEFAULTS
from .capture.verify import _us

SYMBOL = "BTCUSDT"
LANES = ("l2", "diffs", "partial_depth", "book_ticker", "deep_snapshots")
SILVER = [silver_l2, *(SILVER_LANE_ASSETS[lane] for lane in ("diffs", "deep_snapshots"))]
SILVER += [SILVER_LANE_ASSETS[lane] for lane in ("book_mismatches", "partial_depth", "book_ticker")]


def _capture(sim: SimulatorThread, root: str, corrupt: bool) -> None:
    settings = CaptureSettings(
        venue=BINANCE_SPOT,
        symbols=[SYMBOL],
        duration_s=5.0,
        depths=(5, 20),
        lanes=LANES,
        data_root=root,
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        deep_snapshot_interval_s=1.0,
        deep_snapshot_limit=500,  # the whole 400-level book: the phantom is always in range
    )
    timer = threading.Timer(2.0, sim.inject, ("corrupt_level",), {"symbol": SYMBOL, "distance": 50})
    if corrupt:
        timer.start()
    try:
        asyncio.run(run_burst(settings))
    finally:
        timer.cancel()


def _check_verdicts(root: str, port: int, hour: int) -> tuple[dict[str, bool], list[str]]:
    target = CaptureTarget(sim_port=port, data_root=root, symbols=[SYMBOL], depths=[5, 20])
    key = partition_key(BINANCE_SPOT.name, SYMBOL, hour)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(streams.name, [f"{BINANCE_SPOT.name}.{SYMBOL}"])
        result = dg.materialize(
            [*bronze_specs, *SILVER_LANE_ASSETS.values(), silver_l2, gap_windows, *ALL_CHECKS],
            partition_key=str(key),
            instance=instance,
            resources={"capture_target": target},
            selection=[*SILVER, gap_windows],
            raise_on_error=False,
        )
    assert result.success
    verdicts = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    causes = read_gap_windows(target.store(), BINANCE_SPOT.name, SYMBOL, hour)
    return verdicts, causes.column("cause").to_pylist()


def test_a_corrupted_level_fails_book_verified_for_its_hour(tmp_path):
    with SimulatorThread(venue=BINANCE_SPOT, symbols=[SYMBOL], **SIM_DEFAULTS) as sim:
        root = str(tmp_path / "corrupt")
        _capture(sim, root, corrupt=True)
        clean_root = str(tmp_path / "clean")
        _capture(sim, clean_root, corrupt=False)
        port = sim.port

    mismatches = list(iter_lane_records(open_store(root), "book_mismatches"))
    mismatch = next(m for m in mismatches if m["source"] == "deep_snapshot")
    hour = hour_start_us(_us(mismatch["detected_ts"]))
    verdicts, causes = _check_verdicts(root, port, hour)
    assert verdicts["book_verified"] is False
    assert "book_mismatch" in causes
    assert verdicts["sequence_continuity"] is False  # the rebuild left a window, named above

    clean_hour = hour_start_us(
        _us(next(iter_lane_records(open_store(clean_root), "deep_snapshots"))["response_ts"])
    )
    clean_verdicts, clean_causes = _check_verdicts(clean_root, port, clean_hour)
    assert clean_verdicts["book_verified"] is True
    assert "book_mismatch" not in clean_causes
