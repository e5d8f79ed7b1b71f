"""Retention: old runs go with their events, logs and event-log files, except the newest
successful refresh of each hour, which keeps the hour's status in the UI."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from orderbook_pipeline.definitions import REFRESH_JOB
from orderbook_pipeline.jobs import capture_job
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.housekeeping import delete_run, expired_runs
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline_tests.bronze_factory import T0, BurstBuilder, tape
from orderbook_pipeline_tests.dagster_helpers import definitions, pipeline_config, refresh

DAY = 86_400.0


def test_old_runs_are_deleted_but_each_hours_newest_refresh_is_kept(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    BurstBuilder("a").received(tape(20)).write(open_store(lake))
    config = pipeline_config(lake, str(tmp_path / "m.duckdb"))
    defs = definitions(config)
    with dg.instance_for_test() as instance:
        older = refresh(defs, instance, T0, until="")  # a closed hour: all settled
        newer = refresh(defs, instance, T0)
        assert older.success and newer.success
        burst = instance.create_run_for_job(job_def=capture_job, status=dg.DagsterRunStatus.SUCCESS)
        shard = instance.event_log_storage.path_for_shard(older.run_id)
        assert os.path.exists(shard)
        l2 = dg.AssetKey(["silver", "l2"])
        assert instance.get_materialized_partitions(l2) == {"2026-01-01-00:00"}

        # Within the retention nothing goes.
        assert expired_runs(instance, REFRESH_JOB, DAY, time.time()) == []
        ids = expired_runs(instance, REFRESH_JOB, DAY, time.time() + 2 * DAY)
        assert sorted(ids) == sorted([older.run_id, burst.run_id])
        for run_id in ids:
            delete_run(instance, run_id)
        assert instance.get_run_by_id(older.run_id) is None
        assert not os.path.exists(shard)  # the empty event-log file Dagster leaves behind
        assert instance.get_run_by_id(newer.run_id) is not None
        # The hour keeps its status and its verdicts through the kept run.
        assert instance.get_materialized_partitions(l2) == {"2026-01-01-00:00"}
        assert expired_runs(instance, REFRESH_JOB, DAY, time.time() + 2 * DAY) == []


def test_the_housekeeping_sensor_deletes_and_says_how_many(tmp_path: Path) -> None:
    config = pipeline_config(
        str(tmp_path / "lake"),
        str(tmp_path / "m.duckdb"),
        orchestration={"run_retention_hours": 1e-6},
    )
    defs = definitions(config)
    sensor = defs.resolve_sensor_def("housekeeping_sensor")
    target = CaptureTarget.from_config(config)
    with dg.instance_for_test() as instance:
        for _ in range(3):
            instance.create_run_for_job(job_def=capture_job, status=dg.DagsterRunStatus.SUCCESS)
        running = instance.create_run_for_job(
            job_def=capture_job, status=dg.DagsterRunStatus.STARTED
        )
        time.sleep(0.05)
        with dg.build_sensor_context(
            instance=instance, resources={"capture_target": target}
        ) as ctx:
            result = sensor(ctx)
        assert "deleted 3 run(s)" in result.skip_message
        assert [r.run_id for r in instance.get_runs()] == [running.run_id]  # never a live run
