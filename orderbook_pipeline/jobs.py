"""The capture job: one op running one bounded burst through the same code as the CLI.

No `from __future__ import annotations` here: Dagster reads the op's parameter types at runtime.
"""

import asyncio
from typing import Any

import dagster as dg

from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.resources import CaptureTarget, default_symbols
from orderbook_pipeline.venues import get_venue

CAPTURE_ROLE_TAG = {"orderbook/role": "capture"}


class CaptureConfig(dg.Config):  # type: ignore[misc]
    symbols: list[str] = default_symbols()
    depths: list[int] = [10, 20, 50]
    duration_s: float = 300.0
    # Short rolls so partitions become visible within a minute of a burst starting.
    file_seconds: float = 60.0


@dg.op  # type: ignore[misc]
def capture_burst(
    context: dg.OpExecutionContext, config: CaptureConfig, capture_target: CaptureTarget
) -> dict[str, Any]:
    ws_url, rest_url = capture_target.endpoints()
    settings = CaptureSettings(
        venue=get_venue(capture_target.venue),
        symbols=config.symbols,
        duration_s=config.duration_s,
        depths=tuple(config.depths),
        data_root=capture_target.data_root,
        ws_url=ws_url,
        rest_url=rest_url,
        s3_endpoint_url=capture_target.s3_endpoint_url or None,
        max_file_seconds=config.file_seconds,
    )
    summary = asyncio.run(run_burst(settings)).summary()
    context.add_output_metadata(
        {
            "burst_id": summary["burst_id"],
            "events": summary["events"],
            "records": summary["records"],
            "resyncs": summary["resyncs"],
            "reconnects": summary["reconnects"],
            "ingest_lag_ms_p95": summary["ingest_lag_ms"]["p95"],
            "drop_rate_ppm": summary["drop_rate_ppm"],
            "summary": dg.MetadataValue.json(summary),
        }
    )
    return summary


@dg.job(tags=CAPTURE_ROLE_TAG)  # type: ignore[misc]
def capture_job() -> None:
    capture_burst()
