"""Keeps a capture burst running: starts the next one whenever none is active."""

from __future__ import annotations

import time

import dagster as dg

from orderbook_pipeline.jobs import capture_job

# A sensor-requested run starts QUEUED under the queued run coordinator, so queued and
# not-started runs count as active too (dagster's own list of these is private).
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(  # type: ignore[misc]
    job=capture_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING
)
def capture_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    active = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=capture_job.name, statuses=ACTIVE_STATUSES), limit=1
    )
    if active:
        return dg.SkipReason(f"capture run {active[0].dagster_run.run_id} still active")
    return dg.RunRequest(run_key=f"capture-{int(time.time())}")
