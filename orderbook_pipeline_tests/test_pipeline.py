"""End to end in one Dagster instance: overlapping capture bursts from the bundled exchange (one
loses events), then compaction, gap windows, checks and the mart, then the reseed sensor."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import dagster as dg
import duckdb
import pytest

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.marts import mart_l2_5s
from orderbook_pipeline.assets.silver import (
    SILVER_LANE_ASSETS,
    gap_windows,
    silver_diffs,
    silver_l2,
)
from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.checks.asset_checks import ALL_CHECKS
from orderbook_pipeline.compaction.gaps import read_gap_windows
from orderbook_pipeline.compaction.silver import read_silver_diffs, read_silver_l2
from orderbook_pipeline.jobs import CaptureConfig, capture_job
from orderbook_pipeline.partitions import partition_key, split_partition_key
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB
from orderbook_pipeline.sensors import reseed_sensor
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.venues import BINANCE_SPOT

from .capture.conftest import SIM_DEFAULTS

SYMBOL = "BTCUSDT"
ASSETS = [silver_l2, silver_diffs, gap_windows, mart_l2_5s]


def _materialize(instance: dg.DagsterInstance, key: str, resources: dict[str, Any]) -> Any:
    others = [a for a in SILVER_LANE_ASSETS.values() if a not in ASSETS]
    return dg.materialize(
        [*bronze_specs, *ASSETS, *others, *ALL_CHECKS],
        partition_key=key,
        instance=instance,
        resources=resources,
        selection=ASSETS,
        raise_on_error=False,
    )


def _mart_rows(db: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(db, read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM mart_l2_5s ORDER BY venue, symbol, depth, bucket_start"
        ).fetchall()


@pytest.fixture(params=["local", "s3"])
def data_root(request, tmp_path, monkeypatch) -> tuple[str, str]:
    if request.param == "local":
        return str(tmp_path / "lake"), ""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    endpoint = request.getfixturevalue("s3_endpoint")
    return request.getfixturevalue("s3_root"), endpoint


def test_overlapping_bursts_to_checks_mart_and_one_reseed(tmp_path, data_root):
    root, endpoint = data_root
    with (
        SimulatorThread(venue=BINANCE_SPOT, symbols=[SYMBOL], **SIM_DEFAULTS) as sim,
        dg.instance_for_test() as instance,
    ):
        target = CaptureTarget(
            sim_port=sim.port,
            data_root=root,
            s3_endpoint_url=endpoint,
            symbols=[SYMBOL],
            depths=[5, 20],
        )
        db = str(tmp_path / "marts.duckdb")
        resources = {"capture_target": target, "mart_db": MartDuckDB(database=db)}

        # Burst B (8 s) runs beside burst A (3 s, through Dagster); after A has ended, B alone
        # loses a dropped range: the overlap must compact to each event once, the drop a gap.
        second = threading.Thread(
            target=lambda: asyncio.run(
                run_burst(
                    CaptureSettings(
                        venue=BINANCE_SPOT,
                        symbols=[SYMBOL],
                        duration_s=8.0,
                        depths=(5, 20),
                        data_root=root,
                        s3_endpoint_url=endpoint or None,
                        ws_url=sim.ws_url,
                        rest_url=sim.rest_url,
                    )
                )
            )
        )
        drop = threading.Timer(6.5, sim.inject, ("drop",), {"symbol": SYMBOL, "count": 4})
        second.start()
        drop.start()
        time.sleep(0.5)
        result = capture_job.execute_in_process(
            instance=instance,
            resources={"capture_target": target},
            run_config=dg.RunConfig(
                ops={"capture_burst": CaptureConfig(duration_s=3.0, file_seconds=1.0)}
            ),
        )
        second.join()
        assert result.success
        (key,) = {m.partition for m in result.get_asset_materialization_events()}
        venue, symbol, hour = split_partition_key(key)
        assert str(partition_key(venue, symbol, hour)) == key

        run = _materialize(instance, key, resources)
        assert run.success
        store = target.store()

        # Each event exactly once across the overlapping bursts.
        diffs = read_silver_diffs(store, venue, symbol, hour)
        ids = diffs.column("last_update_id").to_pylist()
        assert len(ids) == len(set(ids)) and ids == sorted(ids)
        sent = set(sim.sent_log(SYMBOL))
        assert set(ids) <= sent
        l2 = read_silver_l2(store, venue, symbol, hour, depth=5)
        l2_ids = l2.column("last_update_id").to_pylist()
        assert len(l2_ids) == len(set(l2_ids))
        assert len(set(l2.column("burst_id").to_pylist())) == 2

        # The dropped range is a gap window; the mart flags its buckets; checks say so.
        gaps = read_gap_windows(store, venue, symbol, hour).to_pylist()
        id_gaps = [g for g in gaps if g["from_update_id"] is not None]
        assert len(id_gaps) == 1
        dropped = [
            p["u"]
            for p in sim.generated(SYMBOL)
            if ids[0] < p["u"] < ids[-1] and p["u"] not in sent
        ]
        assert len(dropped) == 4
        gap = id_gaps[0]
        assert gap["from_update_id"] <= min(dropped) and max(dropped) <= gap["to_update_id"]
        evals = {e.check_name: e for e in run.get_asset_check_evaluations()}
        assert evals["sequence_continuity"].passed is False
        assert evals["no_crossed_book"].passed is True
        assert evals["silver_reconciles_with_bronze"].passed is True
        # The stream began in this hour: coverage runs from its first in-sync record to the last
        # landed one, so only the dropped window counts against it.
        cov = evals["coverage"].metadata
        gap_s = (gap["to_ts"] - gap["from_ts"]).total_seconds()
        assert cov["denominator_seconds"].value < 15
        assert abs(cov["in_sync_seconds"].value - (cov["denominator_seconds"].value - gap_s)) < 1e-3
        rows = _mart_rows(db)
        assert rows
        with duckdb.connect(db, read_only=True) as conn:
            flagged = conn.execute(
                "SELECT count(*) FROM mart_l2_5s WHERE has_gap AND bucket_start <= $to "
                "AND bucket_start + INTERVAL 5 SECOND > $from",
                {"from": gap["from_ts"], "to": gap["to_ts"]},
            ).fetchone()[0]
        assert flagged >= 2  # both depths' buckets over the gap

        # Exactly one reseed (continuity and coverage name the same gaps), plus a capture burst
        # since none is running.
        with dg.build_sensor_context(
            instance=instance, resources={"capture_target": target}
        ) as ctx:
            requests = reseed_sensor(ctx).run_requests
        reseeds = [r for r in requests if r.job_name == "reseed_job"]
        assert len(reseeds) == 1 and key in reseeds[0].run_key
        assert [r.job_name for r in requests].count("capture_job") == 1

        # Re-running the partition changes nothing, and asks for no new reseed.
        silver_before = read_silver_l2(store, venue, symbol, hour)
        assert _materialize(instance, key, resources).success
        assert _mart_rows(db) == rows
        assert read_silver_l2(store, venue, symbol, hour).equals(silver_before)
        with dg.build_sensor_context(
            instance=instance, resources={"capture_target": target}
        ) as ctx:
            again = [r for r in reseed_sensor(ctx).run_requests if r.job_name == "reseed_job"]
        assert [r.run_key for r in again] == [reseeds[0].run_key]
