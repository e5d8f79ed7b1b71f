"""What is captured, where it goes, and the mart database: the Dagster side of the configuration.

Both resources are built from the same configuration as the CLI (orderbook_pipeline.yaml, the
environment; see config/), so `dagster dev` and `orderbook-pipeline capture` agree. Everything
lives under one folder by default, OBP_HOME (./data): the lake, `marts.duckdb` and `.dagster/`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.config import PipelineConfig, VenueSection, validated
from orderbook_pipeline.storage.store import DEFAULT_ROOT, Store, open_store


class VenueTarget(dg.Config, VenueSection):  # type: ignore[misc]
    """One venue's streams and lanes: config.VenueSection (its fields, defaults and checks) as
    a Dagster config type. None means the venue's own default."""


class CaptureTarget(dg.ConfigurableResource):  # type: ignore[misc]
    """The venues and streams to capture, the exchange endpoints and the storage root.

    `CaptureTarget(venue="binance-usdm", symbols=[...], depths=[...])` is shorthand for a target
    of one venue. Every per-venue answer is checked by the configuration's rules first.
    """

    exchange: str = "embedded"  # "embedded" (the bundled exchange) or "binance" (the real venue)
    data_root: str = DEFAULT_ROOT
    s3_endpoint_url: str = ""
    burst_seconds: float = 300.0
    # The next burst starts this long before the previous one ends, so scheduling never leaves a
    # hole: covers the sensor interval, run start-up and the new burst's snapshot bootstrap.
    overlap_seconds: float = 60.0
    file_seconds: float = 60.0  # short bronze rolls: partitions appear within a minute
    coverage_threshold: float = 0.99  # the coverage check fails below this in-sync share
    allow_empty_symbols: bool = False  # a symbol a burst captured nothing of fails its run
    time_basis: str = "exchange"  # which clock buckets the marts: exchange | receive
    # How Dagster keeps derived data current and its history bounded (config: orchestration).
    refresh_interval_seconds: float = 300.0
    report_interval_seconds: float = 180.0
    run_retention_hours: float = 24.0
    # A plain mapping as the default: Dagster refuses Config instances as a field default.
    venues: dict[str, VenueTarget] = {"binance-spot": {}}

    def __init__(self, **data: Any) -> None:
        shorthand = {k: data.pop(k) for k in list(data) if k in VenueTarget.model_fields}
        venue = data.pop("venue", None)
        if shorthand or venue:
            if "venues" in data:
                raise ValueError("give either `venues` or one venue's fields, not both")
            data["venues"] = {venue or "binance-spot": VenueTarget(**shorthand)}
        data.setdefault("venues", {"binance-spot": VenueTarget()})
        super().__init__(**data)

    @classmethod
    def from_config(cls, config: PipelineConfig) -> CaptureTarget:
        return cls(
            exchange=config.exchange,
            data_root=config.data_root,
            s3_endpoint_url=config.s3_endpoint_url,
            burst_seconds=config.capture.burst_seconds,
            overlap_seconds=config.capture.overlap_seconds,
            file_seconds=config.capture.file_seconds,
            coverage_threshold=config.capture.coverage_threshold,
            allow_empty_symbols=config.capture.allow_empty_symbols,
            time_basis=config.mart.time_basis,
            refresh_interval_seconds=config.orchestration.refresh_interval_seconds,
            report_interval_seconds=config.orchestration.report_interval_seconds,
            run_retention_hours=config.orchestration.run_retention_hours,
            venues={n: VenueTarget(**s.model_dump()) for n, s in config.venues.items()},
        )

    @functools.cached_property
    def pipeline_config(self) -> PipelineConfig:
        """This target as a validated configuration, built on first use and kept (the resource
        is immutable); raises ConfigError naming the field."""
        raw = {
            "exchange": self.exchange,
            "data_root": self.data_root,
            "s3_endpoint_url": self.s3_endpoint_url,
            "capture": {
                "burst_seconds": self.burst_seconds,
                "overlap_seconds": self.overlap_seconds,
                "file_seconds": self.file_seconds,
                "coverage_threshold": self.coverage_threshold,
                "allow_empty_symbols": self.allow_empty_symbols,
            },
            "mart": {"time_basis": self.time_basis},
            "orchestration": {
                "refresh_interval_seconds": self.refresh_interval_seconds,
                "report_interval_seconds": self.report_interval_seconds,
                "run_retention_hours": self.run_retention_hours,
            },
            "venues": {name: section.model_dump() for name, section in self.venues.items()},
        }
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
        return open_store(self.data_root, s3_endpoint_url=self.s3_endpoint_url or None)


class MartDuckDB(DuckDBResource):  # type: ignore[misc]
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
