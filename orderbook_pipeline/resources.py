"""What is captured, where it goes, and the mart database, chosen in one place.

Everything lives under one folder, OBP_HOME (default ./data, which is also the data root): the
bronze/silver lake, the DuckDB file `marts.duckdb` and Dagster's own storage `.dagster/`. The
embedded default needs no internet: the bundled exchange on loopback. Pointing at real Binance is
one setting (OBP_EXCHANGE=binance), S3 another (OBP_DATA_ROOT=s3://bucket/prefix).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from orderbook_pipeline.capture.settings import WEIGHT_SAFETY
from orderbook_pipeline.partitions import stream_key
from orderbook_pipeline.storage.store import Store, open_store
from orderbook_pipeline.venues import get_venue

SIM_PORT_DEFAULT = 9443


def obp_home() -> Path:
    return Path(os.environ.get("OBP_HOME", "./data"))


class CaptureTarget(dg.ConfigurableResource):  # type: ignore[misc]
    """The streams to capture, the exchange endpoints and the storage root."""

    exchange: str = "embedded"  # "embedded" (the bundled exchange) or "binance" (the real venue)
    venue: str = "binance-spot"
    symbols: list[str] = ["BTCUSDT", "ETHUSDT"]
    depths: list[int] = [10, 20, 50]
    sim_port: int = SIM_PORT_DEFAULT
    data_root: str = "./data"
    s3_endpoint_url: str = ""
    burst_seconds: float = 300.0
    # The next burst starts this long before the previous one ends, so scheduling never leaves a
    # hole: covers the sensor interval, run start-up and the new burst's snapshot bootstrap.
    overlap_seconds: float = 60.0
    file_seconds: float = 60.0  # short bronze rolls: partitions appear within a minute
    coverage_threshold: float = 0.99  # the coverage check fails below this in-sync share

    def effective_overlap_seconds(self) -> float:
        """The overlap, lengthened so that the next burst's books are in sync before this one
        ends: with many symbols, snapshots wait for the request-weight budget (200 spot symbols
        need about two minutes). At most half a burst; beyond that the seams show as gaps."""
        venue = get_venue(self.venue)
        n = len(self.symbols)
        weight = n * venue.snapshot_weight(venue.snapshot_limit_for(n, WEIGHT_SAFETY))
        bootstrap_s = 60.0 * weight / (venue.weight_limit_1m * WEIGHT_SAFETY)
        return max(self.overlap_seconds, min(bootstrap_s + 20.0, self.burst_seconds / 2))

    def endpoints(self) -> tuple[str | None, str | None]:
        """(ws base, REST base); None means the venue's real endpoints."""
        get_venue(self.venue)  # fail early on a typo
        if self.exchange == "binance":
            return None, None
        if self.exchange != "embedded":
            raise ValueError(f"OBP_EXCHANGE must be 'embedded' or 'binance', got {self.exchange!r}")
        return f"ws://127.0.0.1:{self.sim_port}", f"http://127.0.0.1:{self.sim_port}"

    def stream_keys(self) -> list[str]:
        return [stream_key(self.venue, s) for s in self.symbols]

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


def capture_target_from_env() -> CaptureTarget:
    env = os.environ.get
    symbols = [s.strip().upper() for s in env("OBP_SYMBOLS", "BTCUSDT,ETHUSDT").split(",")]
    return CaptureTarget(
        exchange=env("OBP_EXCHANGE", "embedded"),
        venue=env("OBP_VENUE", "binance-spot"),
        symbols=[s for s in symbols if s],
        sim_port=int(env("OBP_SIM_PORT", str(SIM_PORT_DEFAULT))),
        data_root=env("OBP_DATA_ROOT") or str(obp_home()),
        s3_endpoint_url=env("OBP_S3_ENDPOINT_URL", ""),
        burst_seconds=float(env("OBP_BURST_SECONDS", "300")),
        overlap_seconds=float(env("OBP_OVERLAP_SECONDS", "60")),
        coverage_threshold=float(env("OBP_COVERAGE_THRESHOLD", "0.99")),
    )


def mart_db_from_env() -> MartDuckDB:
    return MartDuckDB(
        database=os.environ.get("OBP_DUCKDB_PATH") or str(obp_home() / "marts.duckdb")
    )
