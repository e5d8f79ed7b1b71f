"""Sensors: continuous capture with overlapping bursts, and reseeds after failed checks.

Capture: the next burst is requested `overlap_seconds` before the running one is due to end, so
the new burst's books are in sync before the old one stops and scheduling never leaves a hole.
Each configured venue has its own bursts, with that venue's settings; at most two bursts of
one venue are ever active (the one ending and its successor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg

# Private: Dagster has no public API listing failed check executions per partition (1.13).
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from orderbook_pipeline.checks.asset_checks import RESEED_CHECKS
from orderbook_pipeline.jobs import CaptureConfig, ReseedConfig, capture_job, reseed_job
from orderbook_pipeline.partitions import split_partition_key, streams
from orderbook_pipeline.resources import CaptureTarget

# A sensor-requested run starts QUEUED under the queued run coordinator, so queued and
# not-started runs count as active too (dagster's own list of these is private).
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
VENUE_TAG = "orderbook/venue"
CAPTURE_VENUE_TAG = "orderbook/capture_venue"  # on capture runs only
BURST_SECONDS_TAG = "orderbook/burst_seconds"
# Extra time a burst may take beyond its planned length before run monitoring ends it.
RUNTIME_GRACE_S = 180


@dataclass(frozen=True)
class ActiveBurst:
    run_id: str
    started_at: float | None  # None while queued or starting
    planned_s: float

    @property
    def ends_at(self) -> float | None:
        return None if self.started_at is None else self.started_at + self.planned_s


def burst_due(active: list[ActiveBurst], now: float, overlap_s: float) -> str | None:
    """None when a new burst should start now, else why not."""
    if any(b.started_at is None for b in active):
        return "a capture burst is queued or starting"
    if len(active) >= 2:
        return "two capture bursts already overlap"
    if not active:
        return None
    ends_at = max(b.ends_at or 0.0 for b in active)
    if ends_at - now <= overlap_s:
        return None
    return f"burst {active[0].run_id} runs until {ends_at - now:.0f}s from now"


def _active_bursts(context: dg.SensorEvaluationContext, venue: str) -> list[ActiveBurst]:
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=capture_job.name, statuses=ACTIVE_STATUSES, tags={VENUE_TAG: venue}
        )
    )
    return [
        ActiveBurst(
            run_id=r.dagster_run.run_id,
            started_at=r.start_time
            if r.dagster_run.status == dg.DagsterRunStatus.STARTED
            else None,
            planned_s=float(r.dagster_run.tags.get(BURST_SECONDS_TAG, 0)),
        )
        for r in records
    ]


def capture_request(target: CaptureTarget, venue: str, now: float) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"capture-{venue}-{now:.0f}",
        run_config=dg.RunConfig(
            ops={"capture_burst": CaptureConfig(venue=venue, duration_s=target.burst_seconds)}
        ),
        tags={
            VENUE_TAG: venue,
            # dagster.yaml can limit concurrent bursts per venue with this tag (reseed runs
            # carry VENUE_TAG too, so that one cannot serve).
            CAPTURE_VENUE_TAG: venue,
            BURST_SECONDS_TAG: str(target.burst_seconds),
            # Run monitoring ends a stuck burst; the sensor has already started its successor.
            "dagster/max_runtime": str(int(target.burst_seconds + RUNTIME_GRACE_S)),
        },
    )


@dg.sensor(  # type: ignore[misc]
    job=capture_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING
)
def capture_sensor(
    context: dg.SensorEvaluationContext, capture_target: CaptureTarget
) -> dg.SensorResult:
    """Keeps overlapping bursts running for every configured venue, each on its own schedule."""
    known = set(context.instance.get_dynamic_partitions(streams.name))
    missing = [k for k in capture_target.stream_keys() if k not in known]
    partition_requests = [streams.build_add_request(missing)] if missing else []
    now = time.time()
    requests: list[dg.RunRequest] = []
    waiting: list[str] = []
    for venue in capture_target.venue_names():
        overlap_s = capture_target.effective_overlap_seconds(venue)
        reason = burst_due(_active_bursts(context, venue), now, overlap_s)
        if reason is None:
            requests.append(capture_request(capture_target, venue, now))
        else:
            waiting.append(f"{venue}: {reason}")
    if not requests:
        return dg.SensorResult(
            skip_reason="; ".join(waiting), dynamic_partitions_requests=partition_requests
        )
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partition_requests)


RESEED_LOOKBACK = 100  # failed evaluations per check examined each tick


def reseed_requests(
    context: dg.SensorEvaluationContext, target: CaptureTarget
) -> list[dg.RunRequest]:
    """One reseed run per failed partition and distinct set of gaps (a deterministic run key,
    which Dagster never launches twice), in the partition's venue; plus a capture burst for each
    such venue with none running. Partitions of venues no longer configured are left alone."""
    storage = context.instance.event_log_storage
    configured = set(target.venue_names())
    requests: dict[str, dg.RunRequest] = {}
    for check in RESEED_CHECKS:
        records = storage.get_asset_check_execution_history(
            check.check_key, limit=RESEED_LOOKBACK, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        for rec in records:
            if rec.partition is None or rec.evaluation is None:
                continue
            venue, symbol, _hour = split_partition_key(rec.partition)
            if venue not in configured:
                continue
            signature = rec.evaluation.metadata.get("gap_signature")
            run_key = f"reseed-{rec.partition}-{signature.value if signature else rec.id}"
            requests.setdefault(
                run_key,
                dg.RunRequest(
                    run_key=run_key,
                    job_name=reseed_job.name,
                    run_config=dg.RunConfig(
                        ops={
                            "reseed_snapshots": ReseedConfig(
                                venue=venue, symbols=[symbol], failed_partition=rec.partition
                            )
                        }
                    ),
                    tags={VENUE_TAG: venue, "orderbook/failed_partition": rec.partition},
                ),
            )
    result = list(requests.values())
    now = time.time()
    for venue in sorted({r.tags[VENUE_TAG] for r in result}):
        if _active_bursts(context, venue):
            continue
        capture = capture_request(target, venue, now)
        result.append(
            dg.RunRequest(
                run_key=f"capture-after-reseed-{venue}-{now:.0f}",
                job_name=capture_job.name,
                run_config=capture.run_config,
                tags=capture.tags,
            )
        )
    return result


@dg.sensor(  # type: ignore[misc]
    jobs=[reseed_job, capture_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def reseed_sensor(
    context: dg.SensorEvaluationContext, capture_target: CaptureTarget
) -> dg.SensorResult:
    requests = reseed_requests(context, capture_target)
    if not requests:
        names = ", ".join(check.check_key.name for check in RESEED_CHECKS)
        return dg.SensorResult(skip_reason=f"no new failure of {names} to reseed")
    return dg.SensorResult(run_requests=requests)
