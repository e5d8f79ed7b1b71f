"""Assembles the code location from the configuration; every piece lives in its own module.

The configuration decides the partitions' start and which lanes have assets (only those some
configured venue writes), so the UI shows what this deployment captures and nothing else.
"""

from __future__ import annotations

import time

import dagster as dg

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.klines import build_klines_asset
from orderbook_pipeline.assets.refresh import build_refresh_asset
from orderbook_pipeline.config import PipelineConfig, dagster_home, load_config
from orderbook_pipeline.jobs import capture_job, reseed_job
from orderbook_pipeline.partitions import hourly_partitions, partitions_start
from orderbook_pipeline.refresh.scope import silver_lanes
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB
from orderbook_pipeline.sensors import (
    build_alerts_sensor,
    build_housekeeping_sensor,
    build_refresh_sensor,
    capture_sensor,
    reseed_sensor,
)

REFRESH_JOB = "refresh_job"


def build_definitions(config: PipelineConfig, dagster_home: str | None = None) -> dg.Definitions:
    start = partitions_start(config.orchestration.partitions_start, dagster_home, time.time())
    hourly = hourly_partitions(start)
    lanes = silver_lanes(config)
    refresh = build_refresh_asset(config, hourly)
    refresh_job = dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.assets(refresh),
        executor_def=dg.in_process_executor,
        tags={"orderbook/role": "refresh"},
        description="Refresh one hour: silver, gap windows, marts and checks of every stream.",
    )
    return dg.Definitions(
        assets=[*bronze_specs(lanes, hourly), build_klines_asset(hourly), refresh],
        jobs=[capture_job, reseed_job, refresh_job],
        sensors=[
            capture_sensor,
            reseed_sensor,
            build_refresh_sensor(refresh_job, start, [lane for lane in lanes if lane != "klines"]),
            build_housekeeping_sensor(REFRESH_JOB),
            build_alerts_sensor(config.alerts.webhook_url, config.alerts.timeout_seconds),
        ],
        resources={
            "capture_target": CaptureTarget.from_config(config),
            "mart_db": MartDuckDB(database=config.duckdb_path),
        },
    )


defs = build_definitions(load_config(), dagster_home())
