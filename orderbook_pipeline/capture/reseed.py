"""Fresh REST snapshots outside a burst, for reseeds: written to the snapshot lane with reason
`reseed`, through the same REST client, weight budget and bronze writer as a burst."""

from __future__ import annotations

import logging

import httpx

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.rest import RestClient, RestError, WeightBudget
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.capture.snapshots import write_snapshot
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.roots import open_store

log = logging.getLogger("orderbook_pipeline.capture")


async def take_snapshots(settings: CaptureSettings, reason: str = "reseed") -> BurstMetrics:
    """One snapshot per symbol; failures are counted per symbol and never stop the others."""
    metrics = BurstMetrics(settings.burst_id, settings.venue.name, settings.symbols)
    store = open_store(settings.data_root, s3_endpoint_url=settings.s3_endpoint_url)
    writer = BronzeWriter(store, settings.burst_id)
    limit = settings.snapshot_limit
    assert limit is not None
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False) as http:
            budget = WeightBudget(settings.venue.weight_limit_1m, settings.weight_safety)
            rest = RestClient(settings.venue, settings.rest_base, http, metrics, budget)
            scales, metrics.unknown_symbols = await rest.scales(settings.symbols)
            for symbol in scales:
                try:
                    resp = await rest.depth(symbol, limit)
                    snap = resp.snapshot
                except RestError as exc:
                    metrics.rest_error("snapshot", f"{symbol}: {exc}")
                    continue
                write_snapshot(
                    writer, settings.venue, symbol, snap, resp, reason, settings.burst_id
                )
                metrics.snapshots += 1
    finally:
        metrics.published = writer.close()
        metrics.files_left_for_salvage = writer.left_for_salvage
        metrics.upload_retries = writer.upload_retries
        metrics.files_published = len(metrics.published)
    return metrics
