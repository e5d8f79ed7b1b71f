"""Op jobs: one bounded capture burst, and a reseed's fresh snapshots.

Both run the same code as the CLI. The bronze files a burst publishes are reported to Dagster
by a thread of their own, coalesced per lane and hour (capture/reporter.py): the capture's event
loop never waits for the instance database. SIGTERM or SIGINT (Ctrl-C on `make run`, a
terminated run) ends the burst as the CLI's does: every file final, the run successful.
No `from __future__ import annotations` here: Dagster reads the ops' parameter types at runtime.
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.bronze import bronze_materializations
from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.reporter import Batch, BronzeReporter
from orderbook_pipeline.capture.reseed import take_snapshots
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.refresh.hour import stop_on_signals
from orderbook_pipeline.resources import CaptureTarget

CAPTURE_ROLE_TAG = {"orderbook/role": "capture"}
RESEED_ROLE_TAG = {"orderbook/role": "reseed"}
# The burst's counters each interim bronze report carries (cheap attribute reads).
REPORTED_METRICS = ("burst_id", "events", "reconnects")


class CaptureConfig(dg.Config):
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
        "resyncs_by_cause": dg.MetadataValue.json(summary["resyncs_by_cause"]),
        "reconnects": summary["reconnects"],
        "ingest_lag_ms_p95": summary["ingest_lag_ms"]["p95"],
        "covered_by_snapshots": summary["covered_by_snapshots"],
        "unsynced_at_end": summary["unsynced_at_end"],
    }


def _snapshot(metrics: BurstMetrics) -> dict[str, Any]:
    return {name: getattr(metrics, name) for name in REPORTED_METRICS}


def _reporter(context: dg.OpExecutionContext, interval_s: float) -> BronzeReporter:
    def listener(batches: list[Batch]) -> None:
        for materialization in bronze_materializations(batches):
            context.log_event(materialization)

    return BronzeReporter(listener, interval_s)


def _run(
    context: dg.OpExecutionContext,
    settings: CaptureSettings,
    interval_s: float,
    burst: Callable[[Callable[[list[str], BurstMetrics], None]], Coroutine[Any, Any, BurstMetrics]],
) -> dict[str, Any]:
    with _reporter(context, interval_s) as reporter:
        metrics = asyncio.run(burst(lambda paths, m: reporter.published(paths, _snapshot(m))))
    summary = metrics.summary()
    context.add_output_metadata(
        {
            **_metrics_metadata(metrics),
            "bronze_reports": reporter.reports,
            "bronze_report_failures": reporter.failures,
            "summary": dg.MetadataValue.json(summary),
        }
    )
    return summary


@dg.op
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
    summary = _run(
        context,
        settings,
        capture_target.report_interval_seconds,
        lambda published: run_burst(settings, handle_signals=True, on_published=published),
    )
    empty = summary["empty_symbols"]
    if empty and not settings.allow_empty_symbols:
        # Its files are published and reported already; the run fails so that someone sees it.
        raise dg.Failure(
            description=f"the burst captured nothing of {len(empty)} requested symbol(s): "
            f"{', '.join(empty[:20])} (capture.allow_empty_symbols accepts this)",
            metadata={
                "empty_symbols": dg.MetadataValue.json(empty),
                "summary": dg.MetadataValue.json(summary),
            },
        )
    return summary


class ReseedConfig(dg.Config):
    symbols: list[str]
    venue: str = ""  # "" -> the target's only venue
    failed_partition: str = ""  # the hour whose check failed


async def _snapshots(
    settings: CaptureSettings, published: Callable[[list[str], BurstMetrics], None]
) -> BurstMetrics:
    metrics = await take_snapshots(settings)
    published(metrics.published, metrics)
    return metrics


@dg.op
def reseed_snapshots(
    context: dg.OpExecutionContext, config: ReseedConfig, capture_target: CaptureTarget
) -> dict[str, Any]:
    """Fresh snapshots (reason `reseed`) of the streams whose checks failed; the next refresh
    of the hour they land in records them, so a gap is recorded, not hidden."""
    venue = run_venue(capture_target, config.venue)
    settings = capture_target.capture_settings(venue, config.symbols)
    context.log.info(
        "reseed of %s after a failed check of hour %s", config.symbols, config.failed_partition
    )
    # A few seconds of snapshots: a stop request lets them finish rather than fail the run.
    with stop_on_signals():
        return _run(
            context,
            settings,
            capture_target.report_interval_seconds,
            lambda published: _snapshots(settings, published),
        )


# In process: a burst is one op, and a step process of its own would cost seconds of start-up.
@dg.job(tags=CAPTURE_ROLE_TAG, executor_def=dg.in_process_executor)
def capture_job() -> None:
    capture_burst()


@dg.job(tags=RESEED_ROLE_TAG, executor_def=dg.in_process_executor)
def reseed_job() -> None:
    reseed_snapshots()
