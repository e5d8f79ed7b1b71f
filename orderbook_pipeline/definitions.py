"""Assembles the code location; every piece lives in its own module."""

import dagster as dg

from orderbook_pipeline.assets.automation import automation_sensor
from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.klines import bronze_klines
from orderbook_pipeline.assets.marts import mart_depth_bands_5s, mart_l2_5s
from orderbook_pipeline.assets.silver import SILVER_LANE_ASSETS, gap_windows, silver_l2
from orderbook_pipeline.checks.asset_checks import ALL_CHECKS
from orderbook_pipeline.jobs import capture_job, reseed_job
from orderbook_pipeline.resources import capture_target_from_env, mart_db_from_env
from orderbook_pipeline.sensors import capture_sensor, reseed_sensor

defs = dg.Definitions(
    assets=[
        *bronze_specs,
        bronze_klines,
        silver_l2,
        *SILVER_LANE_ASSETS.values(),
        gap_windows,
        mart_l2_5s,
        mart_depth_bands_5s,
    ],
    asset_checks=ALL_CHECKS,
    jobs=[capture_job, reseed_job],
    sensors=[capture_sensor, reseed_sensor, automation_sensor],
    resources={"capture_target": capture_target_from_env(), "mart_db": mart_db_from_env()},
)
