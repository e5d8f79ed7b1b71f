"""Op jobs: one bounded capture burst, and a reseed's fresh snapshots.

Both run the same code as the CLI and report the bronze partitions they wrote as
materializations, so the UI's lineage and the downstream automation see every new file.
No `from __future__ import annotations` here: Dagster reads the ops' parameter types at runtime.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.bronze import bronze_materializations
from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.reseed import take_snapshots
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.partitions import hour_stream, streams
from orderbook_pipeline.resources import CaptureTarget

CAPTURE_ROLE_TAG = {"orderbook/role": "capture"}
RESEED_ROLE_TAG = {"orderbook/role": "reseed"}


class CaptureConfig(dg.Config):  # type: ignore[misc]
    """Empty or zero fields fall back to the capture target's settings of the venue."""

    venue: str = ""  # "" -> the target's only venue
    symbols: list[str] = []
    depths: list[int] = []
    duration_s: float = 0.0
    file_seconds: float = 0.0


def run_venue(target: CaptureTarget, venue: str) -> str:
    """The venue an op runs for: the one named, or the target's only venue."""
    if venue:
        return venue
    names = target.venue_names()
    if len(names) != 1:
        raise ValueError(f"the op config must name a venue: the target has several, {names}")
    return names[0]


def _metrics_metadata(metrics: BurstMetrics) -> dict[str, Any]:
    summary = metrics.summary()
    return {
        "burst_id": summary["burst_id"],
        "events": summary["events"],
        "records": summary["records"],
        "resyncs": summary["resyncs"],
        "reconnects": summary["reconnects"],
        "ingest_lag_ms_p95": summary["ingest_lag_ms"]["p95"],
        "drop_rate_ppm": summary["drop_rate_ppm"],
    }


def _register_streams(context: dg.OpExecutionContext, venue: str, symbols: list[str]) -> None:
    known = set(context.instance.get_dynamic_partitions(streams.name))
    new = sorted({f"{venue}.{s}" for s in symbols} - known)
    if new:
        context.instance.add_dynamic_partitions(streams.name, new)


def _materialization_reporter(
    context: dg.OpExecutionContext,
) -> Callable[[list[str], BurstMetrics], None]:
    """Reports bronze files as they become final, with the burst's metrics so far."""

    def report(paths: list[str], metrics: BurstMetrics) -> None:
        with dg.partition_loading_context(dynamic_partitions_store=context.instance):
            for mat in bronze_materializations(paths, _metrics_metadata(metrics)):
                # Dagster stores a materialization for an invalid key silently: check it first.
                if hour_stream.has_partition_key(mat.partition):
                    context.log_event(mat)
                else:
                    context.log.warning("partition %s is outside the partitions", mat.partition)

    return report


def _run(context: dg.OpExecutionContext, settings: CaptureSettings, reseed: bool) -> dict[str, Any]:
    _register_streams(context, settings.venue.name, settings.symbols)
    report = _materialization_reporter(context)
    if reseed:
        metrics = asyncio.run(take_snapshots(settings))
        report(metrics.published, metrics)
    else:
        metrics = asyncio.run(run_burst(settings, on_published=report))
    summary = metrics.summary()
    context.add_output_metadata(
        {**_metrics_metadata(metrics), "summary": dg.MetadataValue.json(summary)}
    )
    return summary


@dg.op  # type: ignore[misc]
def capture_burst(
    context: dg.OpExecutionContext, config: CaptureConfig, capture_target: CaptureTarget
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if config.duration_s:
        overrides["duration_s"] = config.duration_s
    if config.file_seconds:
        overrides["max_file_seconds"] = config.file_seconds
    if config.depths:
        overrides["depths"] = tuple(config.depths)
    venue = run_venue(capture_target, config.venue)
    settings = capture_target.capture_settings(venue, config.symbols or None, **overrides)
    context.log.info("burst %s: %s %s", settings.burst_id, settings.venue.name, settings.symbols)
    return _run(context, settings, reseed=False)


class ReseedConfig(dg.Config):  # type: ignore[misc]
    symbols: list[str]
    venue: str = ""  # "" -> the target's only venue
    failed_partition: str = ""  # the hour × stream partition whose check failed


@dg.op  # type: ignore[misc]
def reseed_snapshots(
    context: dg.OpExecutionContext, config: ReseedConfig, capture_target: CaptureTarget
) -> dict[str, Any]:
    """Fresh snapshots (reason `reseed`); their bronze materialization re-runs the hour's silver,
    gap windows and mart through automation, so the gap is recorded, not hidden."""
    venue = run_venue(capture_target, config.venue)
    settings = capture_target.capture_settings(venue, config.symbols)
    context.log.info("reseed after a failed check on %s", config.failed_partition or "?")
    return _run(context, settings, reseed=True)


@dg.job(tags=CAPTURE_ROLE_TAG)  # type: ignore[misc]
def capture_job() -> None:
    capture_burst()


@dg.job(tags=RESEED_ROLE_TAG)  # type: ignore[misc]
def reseed_job() -> None:
    reseed_snapshots()
