"""Continuous capture with overlapping bursts.

The next burst is requested `overlap_seconds` before the running one is due to end, so the new
burst's books are in sync before the old one stops and scheduling never leaves a hole. Each
configured venue has its own bursts, with that venue's settings; at most two bursts of one
venue are ever active (the one ending and its successor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg

from orderbook_pipeline.jobs import CaptureConfig, capture_job
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.runs import (
    ACTIVE_STATUSES,
    BURST_SECONDS_TAG,
    CAPTURE_VENUE_TAG,
    VENUE_TAG,
)

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


def active_bursts(instance: dg.DagsterInstance, venue: str) -> list[ActiveBurst]:
    records = instance.get_run_records(
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
        job_name=capture_job.name,
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


@dg.sensor(
    job=capture_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps overlapping capture bursts running for every configured venue: the "
    "successor starts `overlap_seconds` (lengthened to cover its snapshot bootstrap) before "
    "the running burst ends.",
)
def capture_sensor(
    context: dg.SensorEvaluationContext, capture_target: CaptureTarget
) -> dg.SensorResult:
    now = time.time()
    requests: list[dg.RunRequest] = []
    waiting: list[str] = []
    for venue in capture_target.venue_names():
        overlap_s = capture_target.effective_overlap_seconds(venue)
        reason = burst_due(active_bursts(context.instance, venue), now, overlap_s)
        if reason is None:
            requests.append(capture_request(capture_target, venue, now))
        else:
            waiting.append(f"{venue}: {reason}")
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(waiting))
    return dg.SensorResult(run_requests=requests)
