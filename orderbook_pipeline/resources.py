"""What is captured, where it goes, and the mart database: the Dagster side of the configuration.

Both resources are built from the same configuration as the CLI (orderbook_pipeline.yaml, the
environment; see config/), so `dagster dev` and `orderbook-pipeline capture` agree. Everything
lives under one folder by default, OBP_HOME (./data): the lake, `marts.duckdb` and `.dagster/`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import BaseModel

from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.config import PipelineConfig, VenueSection, validated
from orderbook_pipeline.storage.store import Store

FieldPath = tuple[str, ...]

# Configuration fields that are not the capture target's, and whose they are instead.
NOT_TARGET_FIELDS: dict[FieldPath, str] = {
    ("duckdb_path",): "the mart_db resource's database",
    ("orchestration", "partitions_start"): "the partitions definition, fixed at load",
    # A secret: the UI shows a resource's configuration, never the alerts sensor's closure.
    ("alerts", "webhook_url"): "the alerts sensor's, given at load",
    ("alerts", "timeout_seconds"): "the alerts sensor's, given at load",
}


def _target_fields() -> dict[str, FieldPath]:
    """Resource field -> configuration path: the top-level fields and those of each section
    under their own (unique) names; `venues` stays a mapping of its own."""
    paths: dict[str, FieldPath] = {}
    for name, field in PipelineConfig.model_fields.items():
        section = field.annotation
        if name == "venues":
            continue
        if isinstance(section, type) and issubclass(section, BaseModel):
            paths.update({leaf: (name, leaf) for leaf in section.model_fields})
        else:
            paths[name] = (name,)
    return {name: path for name, path in paths.items() if path not in NOT_TARGET_FIELDS}


# The one mapping between the resource and the configuration: both directions use it, and
# the resource's defaults are read through it, so a new configuration field cannot be half
# mapped (orderbook_pipeline_tests/test_resources.py fails until the resource declares it).
TARGET_FIELDS = _target_fields()
_CONFIG_DEFAULTS = PipelineConfig()
_DEFAULT_VENUE = next(iter(_CONFIG_DEFAULTS.venues))  # the venue of the shorthand


def _at(config: BaseModel, path: FieldPath) -> Any:
    value: Any = config
    for part in path:
        value = getattr(value, part)
    return value


def config_default(name: str) -> Any:
    """The configuration model's default of resource field `name`."""
    return _at(_CONFIG_DEFAULTS, TARGET_FIELDS[name])


class VenueTarget(dg.Config, VenueSection):
    """One venue's streams and lanes: config.VenueSection (its fields, defaults and checks) as
    a Dagster config type. None means the venue's own default."""


class CaptureTarget(dg.ConfigurableResource["CaptureTarget"]):  # ops get the target itself
    """The venues and streams to capture, the exchange endpoints and the storage root: the
    configuration (config/schema.py) flattened for Dagster, defaults and checks included.

    `CaptureTarget(venue="binance-usdm", symbols=[...], depths=[...])` is shorthand for a target
    of one venue. Every per-venue answer is checked by the configuration's rules first.
    """

    # Types as Dagster's config system takes them (Literal fields as str); the values are
    # the configuration's, validated by `pipeline_config`. See config/schema.py for meanings.
    data_root: str = config_default("data_root")  # "": ./data
    s3_endpoint_url: str = config_default("s3_endpoint_url")
    exchange: str = config_default("exchange")  # embedded | binance
    burst_seconds: float = config_default("burst_seconds")
    overlap_seconds: float = config_default("overlap_seconds")
    file_seconds: float = config_default("file_seconds")
    coverage_threshold: float = config_default("coverage_threshold")
    allow_empty_symbols: bool = config_default("allow_empty_symbols")
    core: str = config_default("core")  # auto | compiled | python
    time_basis: str = config_default("time_basis")  # exchange | receive
    refresh_interval_seconds: float = config_default("refresh_interval_seconds")
    report_interval_seconds: float = config_default("report_interval_seconds")
    run_retention_hours: float = config_default("run_retention_hours")
    # A plain mapping as the default: Dagster refuses Config instances as a field default (and
    # validates this one into VenueTargets).
    venues: dict[str, VenueTarget] = cast(
        "dict[str, VenueTarget]", {name: {} for name in _CONFIG_DEFAULTS.venues}
    )

    def __init__(self, **data: Any) -> None:
        shorthand = {k: data.pop(k) for k in list(data) if k in VenueTarget.model_fields}
        venue = data.pop("venue", None)
        if shorthand or venue:
            if "venues" in data:
                raise ValueError("give either `venues` or one venue's fields, not both")
            data["venues"] = {venue or _DEFAULT_VENUE: VenueTarget(**shorthand)}
        data.setdefault("venues", {name: VenueTarget() for name in _CONFIG_DEFAULTS.venues})
        super().__init__(**data)

    @classmethod
    def from_config(cls, config: PipelineConfig) -> CaptureTarget:
        values = {name: _at(config, path) for name, path in TARGET_FIELDS.items()}
        venues = {n: VenueTarget(**s.model_dump()) for n, s in config.venues.items()}
        return cls(**values, venues=venues)

    @functools.cached_property
    def pipeline_config(self) -> PipelineConfig:
        """This target as a validated configuration, built on first use and kept (the resource
        is immutable); raises ConfigError naming the field."""
        raw: dict[str, Any] = {}
        for name, path in TARGET_FIELDS.items():
            node = raw
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = getattr(self, name)
        raw["venues"] = {name: section.model_dump() for name, section in self.venues.items()}
        return validated(raw, source="the capture_target resource")

    # ------------------------------------------------------------------ per venue
    def venue_names(self) -> list[str]:
        return list(self.venues)

    def symbols_for(self, venue: str) -> list[str]:
        return self.pipeline_config.venue(venue).symbols

    def depths_for(self, venue: str) -> list[int]:
        return sorted(set(self.pipeline_config.venue(venue).depths))

    def lanes_for(self, venue: str) -> list[str]:
        """The venue's lanes, its default (every lane it feeds) made explicit."""
        lanes = self.pipeline_config.venue(venue).lanes
        assert lanes is not None  # resolved by the configuration
        return lanes

    def kline_intervals_for(self, venue: str) -> list[str]:
        return self.pipeline_config.venue(venue).kline_intervals

    def endpoints(self, venue: str) -> tuple[str | None, str | None]:
        """(ws base, REST base); None means the venue's real endpoints. Embedded: the venue's
        own port on 127.0.0.1."""
        return self.pipeline_config.endpoints(venue)

    def capture_settings(
        self, venue: str, symbols: list[str] | None = None, **overrides: Any
    ) -> CaptureSettings:
        """One burst of `venue` with its configured settings; overrides are CaptureSettings
        fields (duration_s, max_file_seconds, ...)."""
        return self.pipeline_config.capture_settings(venue, symbols, **overrides)

    def effective_overlap_seconds(self, venue: str) -> float:
        return self.pipeline_config.effective_overlap_seconds(venue)

    # ------------------------------------------------------------------ all venues
    def store(self) -> Store:
        return self.pipeline_config.store()


class MartDuckDB(DuckDBResource):
    """DuckDBResource whose connection is closed even when a statement fails.

    The upstream resource closes only on success, leaving the file lock held after an error
    (verified on 1.13.27), which stalls every later writer in the same process.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        upstream = super().get_connection()
        conn = upstream.__enter__()
        try:
            yield conn
        finally:
            conn.close()
