"""Asset keys, one home: bronze and silver per lane, the gap windows, the gold marts."""

from __future__ import annotations

import dagster as dg

from orderbook_pipeline.checks.specs import GAP_WINDOWS


def bronze_key(lane: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", lane])


def silver_key(lane: str) -> dg.AssetKey:
    """Silver of a lane, or of the gap windows (GAP_WINDOWS)."""
    return dg.AssetKey(["silver", lane])


def mart_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", table])


GAP_WINDOWS_KEY = silver_key(GAP_WINDOWS)
