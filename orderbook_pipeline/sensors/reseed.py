"""Reseeds after failed checks: fresh snapshots of exactly the streams a check failed on.

A failed continuity, coverage or book-verified evaluation names its failing streams and their
signatures (assets/refresh_events.py). One reseed run per hour, venue and distinct set of failed
streams with their signatures (a deterministic run key, which Dagster never launches twice):
continuity and coverage failing on the same gaps start one reseed, and re-judging an hour whose
gaps cannot be recovered never starts another; plus a capture burst for each such venue with
none running. Venues no longer configured, and hours older than RESEED_MAX_AGE_HOURS (a
backfill of old hours), are left alone.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.keys import silver_key
from orderbook_pipeline.checks.specs import RESEED_CHECKS
from orderbook_pipeline.dagster_private import AssetCheckExecutionRecordStatus
from orderbook_pipeline.jobs import ReseedConfig, capture_job, reseed_job
from orderbook_pipeline.partitions import hour_start_of
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.sensors.capture import active_bursts, capture_request
from orderbook_pipeline.sensors.runs import VENUE_TAG

RESEED_LOOKBACK = 100  # failed evaluations per check examined each tick
# Fresh snapshots help the capture of now: a failure of an hour longer ago than this (a
# backfill, a re-judged old hour) is recorded, not reseeded.
RESEED_MAX_AGE_HOURS = 2
FAILED_STREAMS = "failed_streams"  # the evaluation's metadata: venue -> symbol -> signature


def failed_streams_of(metadata: dict[str, Any]) -> dict[str, dict[str, str]]:
    value = metadata.get(FAILED_STREAMS)
    data = getattr(value, "data", value)
    return data if isinstance(data, dict) else {}


def reseed_requests(
    instance: dg.DagsterInstance, target: CaptureTarget, now: float
) -> list[dg.RunRequest]:
    storage = instance.event_log_storage
    configured = set(target.venue_names())
    # run key -> request: one per (hour, venue) and set of failed streams with their signatures
    requests: dict[str, dg.RunRequest] = {}
    for check in RESEED_CHECKS:
        key = dg.AssetCheckKey(silver_key(check.asset), check.name)
        records = storage.get_asset_check_execution_history(
            key, limit=RESEED_LOOKBACK, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        for rec in records:
            if rec.partition is None or rec.evaluation is None:
                continue
            if now - hour_start_of(rec.partition) / 1e6 > (RESEED_MAX_AGE_HOURS + 1) * 3600:
                continue
            for venue, symbols in sorted(failed_streams_of(dict(rec.evaluation.metadata)).items()):
                if venue not in configured or not symbols:
                    continue
                identity = repr(sorted(symbols.items()))
                signature = hashlib.sha1(identity.encode()).hexdigest()[:12]
                run_key = f"reseed-{rec.partition}-{venue}-{signature}"
                requests.setdefault(
                    run_key, _reseed_request(run_key, rec.partition, venue, symbols)
                )
    requests_list = list(requests.values())
    for venue in sorted({r.tags[VENUE_TAG] for r in requests_list}):
        if active_bursts(instance, venue):
            continue
        capture = capture_request(target, venue, now)
        requests_list.append(
            dg.RunRequest(
                run_key=f"capture-after-reseed-{venue}-{now:.0f}",
                job_name=capture_job.name,
                run_config=capture.run_config,
                tags=capture.tags,
            )
        )
    return requests_list


def _reseed_request(run_key: str, hour: str, venue: str, symbols: dict[str, str]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        job_name=reseed_job.name,
        run_config=dg.RunConfig(
            ops={
                "reseed_snapshots": ReseedConfig(
                    venue=venue, symbols=sorted(symbols), failed_partition=hour
                )
            }
        ),
        tags={VENUE_TAG: venue, "orderbook/failed_partition": hour},
    )


@dg.sensor(
    jobs=[reseed_job, capture_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts fresh snapshots of the streams a continuity, coverage or book-verified "
    "check failed on: once per hour, venue and distinct set of failures.",
)
def reseed_sensor(
    context: dg.SensorEvaluationContext, capture_target: CaptureTarget
) -> dg.SensorResult:
    requests = reseed_requests(context.instance, capture_target, time.time())
    if not requests:
        names = ", ".join(sorted({check.name for check in RESEED_CHECKS}))
        return dg.SensorResult(skip_reason=f"no new failure of {names} to reseed")
    return dg.SensorResult(run_requests=requests)
