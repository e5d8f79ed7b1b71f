"""Bounded history: runs finished more than `orchestration.run_retention_hours` ago are deleted,
with their events, their compute logs and (sqlite) their event-log file.

Kept: the newest successful refresh of each hour, which holds the hour's materializations and
check verdicts (and, its final refresh, the bronze it found), so an old hour keeps its status in
the UI; and runs of other jobs (the UI's own materializations and backfills), which people
started and delete themselves. Sensor ticks are purged by Dagster itself (dagster.yaml
`retention`). A tick deletes at most MAX_DELETES runs, so it stays short after a long pause.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime

import dagster as dg

from orderbook_pipeline.dagster_private import SqliteEventLogStorage
from orderbook_pipeline.jobs import capture_job, reseed_job
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.runs import FINISHED_STATUSES, PARTITION_TAG

MAX_DELETES = 300


def _newest_success(instance: dg.DagsterInstance, job_name: str, hour: str) -> str | None:
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS], tags={PARTITION_TAG: hour}
        ),
        limit=1,
    )
    return records[0].dagster_run.run_id if records else None


def delete_run(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run, its events, its compute logs, and (sqlite) its now empty event-log file,
    which Dagster leaves behind (at least 112 KB each)."""
    instance.delete_run(run_id)
    with contextlib.suppress(Exception):  # compute logs may live elsewhere, or be gone
        instance.compute_log_manager.delete_logs(prefix=[run_id])
    storage = instance.event_log_storage
    if isinstance(storage, SqliteEventLogStorage):
        path = storage.path_for_shard(run_id)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)


def expired_runs(
    instance: dg.DagsterInstance, refresh_job: str, retention_s: float, now: float
) -> list[str]:
    """Run ids to delete now (at most MAX_DELETES)."""
    before = dg.RunsFilter(
        statuses=FINISHED_STATUSES, updated_before=datetime.fromtimestamp(now - retention_s, UTC)
    )
    out: list[str] = []
    for job in (capture_job.name, reseed_job.name):
        records = instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=job, statuses=before.statuses, updated_before=before.updated_before
            ),
            limit=MAX_DELETES - len(out),
        )
        out += [r.dagster_run.run_id for r in records]
    if len(out) >= MAX_DELETES:
        return out
    kept: dict[str, str | None] = {}
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=refresh_job, statuses=before.statuses, updated_before=before.updated_before
        ),
        limit=4 * MAX_DELETES,
    )
    for r in records:
        hour = r.dagster_run.tags.get(PARTITION_TAG)
        if hour is None:
            continue
        if hour not in kept:
            kept[hour] = _newest_success(instance, refresh_job, hour)
        if kept[hour] != r.dagster_run.run_id:
            out.append(r.dagster_run.run_id)
            if len(out) >= MAX_DELETES:
                break
    return out


def build_housekeeping_sensor(refresh_job_name: str) -> dg.SensorDefinition:
    @dg.sensor(
        minimum_interval_seconds=900,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Deletes runs finished more than orchestration.run_retention_hours ago "
        "(events, compute logs, event-log files), keeping the newest successful refresh of "
        "each hour, which holds the hour's status.",
    )
    def housekeeping_sensor(
        context: dg.SensorEvaluationContext, capture_target: CaptureTarget
    ) -> dg.SkipReason:
        started = time.monotonic()
        retention_s = capture_target.run_retention_hours * 3600
        ids = expired_runs(context.instance, refresh_job_name, retention_s, time.time())
        for run_id in ids:
            delete_run(context.instance, run_id)
        return dg.SkipReason(
            f"deleted {len(ids)} run(s) finished over {capture_target.run_retention_hours:g} h "
            f"ago in {time.monotonic() - started:.1f} s"
        )

    return housekeeping_sensor
