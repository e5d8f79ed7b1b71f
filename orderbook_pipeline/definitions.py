"""Assembles the code location; every piece lives in its own module."""

import dagster as dg

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.jobs import capture_job, reseed_job
from orderbook_pipeline.resources import capture_target_from_env
from orderbook_pipeline.sensors import capture_sensor

defs = dg.Definitions(
    assets=[*bronze_specs],
    jobs=[capture_job, reseed_job],
    sensors=[capture_sensor],
    resources={"capture_target": capture_target_from_env()},
)
