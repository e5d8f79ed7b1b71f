"""Everything one capture burst needs to know, validated once at the start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orderbook_pipeline.venues import Venue

# Share of the venue's per-minute request weight a burst lets itself use: the rest is headroom
# for other processes on the same IP (Binance counts weight per IP).
WEIGHT_SAFETY = 0.8


def new_burst_id() -> str:
    """Sortable and unique: UTC start time plus a random suffix (several bursts can overlap)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class CaptureSettings:
    venue: Venue
    symbols: list[str]
    duration_s: float = 60.0
    depths: tuple[int, ...] = (10, 20, 50)
    data_root: str = "./data"
    ws_url: str | None = None  # default: the venue's real endpoint
    rest_url: str | None = None
    s3_endpoint_url: str | None = None
    # Deepest snapshot by default: a shallow one leaves deep levels unknown until they surface wrong.
    snapshot_limit: int | None = None
    snapshot_concurrency: int = 2
    # Fraction of the venue's per-minute request weight this process lets itself use.
    weight_safety: float = WEIGHT_SAFETY
    max_streams_per_connection: int | None = None
    # A connection with no frame for this long is treated as dead and replaced.
    stale_after_s: float = 10.0
    reconnect_base_s: float = 0.25
    reconnect_cap_s: float = 30.0
    max_file_bytes: int = 64 * 1024 * 1024
    max_file_seconds: float = 900.0
    flush_interval_s: float = 1.0
    burst_id: str = field(default_factory=new_burst_id)

    def __post_init__(self) -> None:
        symbols = [s.strip().upper() for s in self.symbols if s.strip()]
        if not symbols:
            raise ValueError("at least one symbol is required")
        self.symbols = list(dict.fromkeys(symbols))
        if not self.depths or any(d <= 0 for d in self.depths):
            raise ValueError(f"depths must be positive integers, got {self.depths}")
        self.depths = tuple(sorted(set(self.depths)))
        if self.snapshot_limit is None:
            self.snapshot_limit = self.venue.snapshot_limit_for(
                len(self.symbols), self.weight_safety
            )
        self.venue.validate_snapshot_limit(self.snapshot_limit)
        if self.duration_s <= 0:
            raise ValueError("duration must be positive")
        if not 0 < self.weight_safety <= 1:
            raise ValueError("weight_safety must be in (0, 1]")

    @property
    def rest_base(self) -> str:
        return (self.rest_url or self.venue.rest_base).rstrip("/")

    @property
    def streams_per_connection(self) -> int:
        return self.max_streams_per_connection or self.venue.max_streams_per_connection
