"""Sensors: capture bursts, refreshes of the hours, reseeds after failed checks, retention,
alerts."""

from orderbook_pipeline.sensors.alerts import build_alerts_sensor
from orderbook_pipeline.sensors.capture import capture_sensor
from orderbook_pipeline.sensors.housekeeping import build_housekeeping_sensor
from orderbook_pipeline.sensors.refresh import build_refresh_sensor
from orderbook_pipeline.sensors.reseed import reseed_sensor

__all__ = [
    "build_alerts_sensor",
    "build_housekeeping_sensor",
    "build_refresh_sensor",
    "capture_sensor",
    "reseed_sensor",
]
