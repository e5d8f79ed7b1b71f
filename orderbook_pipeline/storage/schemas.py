"""The bronze Avro schemas by lane, as the bronze writer, salvage and the klines backfill take
them: derived from the lane registry (lanes/), where each lane's fields are defined."""

from __future__ import annotations

from typing import Any

from orderbook_pipeline.lanes.registry import LANES

LANE_SCHEMAS: dict[str, dict[str, Any]] = {name: spec.avro for name, spec in LANES.items()}
PARSED_SCHEMAS: dict[str, Any] = {name: spec.parsed for name, spec in LANES.items()}
