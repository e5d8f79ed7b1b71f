"""Everything one capture burst needs to know, validated once at the start."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from orderbook_pipeline.core.implementation import CHOICES as CORE_CHOICES
from orderbook_pipeline.lanes.depth_bands import DEFAULT_BAND_PCTS
from orderbook_pipeline.lanes.registry import (
    CAPTURE_LANES,
    STREAM_LANES,
    VERIFYING_LANES,
    stream_name,
)
from orderbook_pipeline.storage.store import DEFAULT_ROOT
from orderbook_pipeline.venues import (
    CONNECTION_ATTEMPTS_PER_5M,
    PARTIAL_DEPTH_LEVELS,
    Venue,
    normalised_symbols,
    symbol_problem,
)

# CAPTURE_LANES: the lanes a burst can be asked for (the lane registry). It also writes
# "snapshots" always, and "book_mismatches" whenever a check finds the local book differs.


def written_lanes(lanes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Every bronze lane a burst capturing `lanes` can write files into."""
    extra = ["snapshots"]
    if any(lane in VERIFYING_LANES for lane in lanes):
        extra.append("book_mismatches")
    return tuple(dict.fromkeys([*lanes, *extra]))


def default_lanes(venue: Venue) -> tuple[str, ...]:
    """Every lane the venue can feed."""
    return tuple(
        lane for lane in CAPTURE_LANES if lane not in STREAM_LANES or lane in venue.stream_lanes
    )


# Share of the venue's per-minute request weight a burst lets itself use: the rest is headroom
# for other processes on the same IP (Binance counts weight per IP).
WEIGHT_SAFETY = 0.8


# Connections a burst may open at its start: half the per-IP attempt limit, so that every
# connection can be replaced once within five minutes.
MAX_CONNECTIONS = CONNECTION_ATTEMPTS_PER_5M // 2


# Endpoints given as options: their schemes (a typo otherwise surfaces as a reconnect loop).
URL_SCHEMES = {
    "ws_url": ("ws", "wss"),
    "rest_url": ("http", "https"),
    "s3_endpoint_url": ("http", "https"),
}
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def url_problem(url: str | None, schemes: tuple[str, ...]) -> str | None:
    """Why `url` cannot be an endpoint with one of `schemes`, or None (also for no URL)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in schemes or not parts.hostname:
        return f"{url!r} is not a {'/'.join(schemes)}:// URL with a host"
    return None


def new_burst_id() -> str:
    """Sortable and unique: UTC start time plus a random suffix (several bursts can overlap)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class CaptureSettings:
    venue: Venue
    symbols: list[str]
    duration_s: float = 60.0
    depths: tuple[int, ...] = (10, 20, 50)
    # None: every lane the venue can feed (default_lanes).
    lanes: tuple[str, ...] | None = None
    partial_depth_levels: int = 20  # <sym>@depth<N>@100ms: 5, 10 or 20
    band_pcts: tuple[float, ...] = DEFAULT_BAND_PCTS  # depth_bands: % distance from mid
    band_interval_s: float = 1.0  # one depth_bands record per symbol at most this often
    # Periodic deep snapshots verifying each book; the interval stretches if the weight
    # budget cannot afford it for every symbol.
    deep_snapshot_interval_s: float = 60.0
    deep_snapshot_limit: int | None = None  # default: the venue's deepest (5000 / 1000)
    clock_check_interval_s: float = 60.0  # local clock vs exchange time, measured this often
    data_root: str = DEFAULT_ROOT  # a local folder or s3://bucket/prefix
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
    # False: a requested symbol the burst captured nothing of fails it (see CaptureSection).
    allow_empty_symbols: bool = False
    # The capture core (core/implementation.py): auto = compiled when built, else python.
    core: str = "auto"
    # A progress line this often (capture/progress.py); 0: none (Dagster runs: the metadata).
    progress_interval_s: float = 0.0
    burst_id: str = field(default_factory=new_burst_id)

    def __post_init__(self) -> None:
        self.symbols = normalised_symbols(self.symbols)
        if not self.symbols:
            raise ValueError("at least one symbol is required")
        for symbol in self.symbols:
            if (problem := symbol_problem(symbol)) is not None:
                raise ValueError(problem)
        if not self.depths or any(d <= 0 for d in self.depths):
            raise ValueError(f"depths must be positive integers, got {self.depths}")
        self.depths = tuple(sorted(set(self.depths)))
        self._validate_lanes()
        if self.snapshot_limit is None:
            self.snapshot_limit = self.venue.snapshot_limit_for(
                len(self.symbols), self.weight_safety
            )
        self.venue.validate_snapshot_limit(self.snapshot_limit)
        if self.duration_s <= 0:
            raise ValueError("duration must be positive")
        if not 0 < self.weight_safety <= 1:
            raise ValueError("weight_safety must be in (0, 1]")
        if self.core not in CORE_CHOICES:
            raise ValueError(f"core must be one of {CORE_CHOICES}, got {self.core!r}")
        self._validate_connection()

    def _validate_connection(self) -> None:
        """Options that, out of range, make a burst that silently captures nothing (no
        connection opened) or reconnects in a tight loop."""
        limit = self.venue.max_streams_per_connection
        chosen = self.max_streams_per_connection
        if chosen is not None and not 1 <= chosen <= limit:
            raise ValueError(
                f"max_streams_per_connection must be between 1 and {self.venue.name}'s limit "
                f"{limit}, got {chosen}"
            )
        for name in ("stale_after_s", "reconnect_base_s", "flush_interval_s", "max_file_seconds"):
            if not getattr(self, name) > 0:  # also NaN
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.reconnect_cap_s >= self.reconnect_base_s:
            raise ValueError("reconnect_cap_s must be at least reconnect_base_s")
        if self.max_file_bytes <= 0 or self.snapshot_concurrency < 1:
            raise ValueError("max_file_bytes and snapshot_concurrency must be positive")
        for name, schemes in URL_SCHEMES.items():
            if (problem := url_problem(getattr(self, name), schemes)) is not None:
                raise ValueError(f"{name}: {problem}")
        if self.data_root.startswith("s3://"):
            bucket = self.data_root[len("s3://") :].partition("/")[0]
            if not S3_BUCKET.fullmatch(bucket):
                raise ValueError(
                    f"data_root: {bucket!r} is not an S3 bucket name (3 to 63 lower-case "
                    "letters, digits, dots and hyphens)"
                )
        needed = len(self.connection_groups(self.symbols))
        if needed > MAX_CONNECTIONS:
            per_symbol = needed / len(self.symbols)
            raise ValueError(
                f"{len(self.symbols)} symbols with lanes {list(self.lanes or ())} need {needed} "
                f"websocket connections; {self.venue.name} allows "
                f"{CONNECTION_ATTEMPTS_PER_5M} connection attempts per 5 minutes per IP and a "
                f"burst keeps half of them for reconnects: capture at most "
                f"{int(MAX_CONNECTIONS / per_symbol)} symbols per process"
            )

    def lane_streams(self, symbols: list[str]) -> dict[str, tuple[str, str, int | None]]:
        """Stream name -> (symbol, lane, partial depth levels) of the lanes besides depth."""
        out: dict[str, tuple[str, str, int | None]] = {}
        for symbol in symbols:
            for lane in self.lanes or ():
                if lane in STREAM_LANES:
                    levels = self.partial_depth_levels if lane == "partial_depth" else None
                    name = stream_name(self.venue, lane, symbol, self.partial_depth_levels)
                    out[name] = (symbol, lane, levels)
        return out

    def connection_groups(self, symbols: list[str]) -> list[tuple[str | None, list[str]]]:
        """(path prefix, stream names) of each connection a burst of `symbols` opens: the depth
        streams (prefix None: the venue's own), then the other lanes' by path prefix."""
        venue, per = self.venue, self.streams_per_connection
        depth = [venue.depth_stream(symbol) for symbol in symbols]
        groups: list[tuple[str | None, list[str]]] = [
            (None, names) for names in venue.stream_groups(depth, per, self.ws_url)
        ]
        by_prefix: dict[str, list[str]] = {}
        for name, (_symbol, lane, _levels) in self.lane_streams(symbols).items():
            by_prefix.setdefault(venue.lane_path_prefix(lane), []).append(name)
        for prefix, streams in by_prefix.items():
            groups += [(prefix, g) for g in venue.stream_groups(streams, per, self.ws_url, prefix)]
        return groups

    def _validate_lanes(self) -> None:
        if self.lanes is None:
            self.lanes = default_lanes(self.venue)
        lanes = tuple(dict.fromkeys(lane.strip() for lane in self.lanes if lane.strip()))
        for lane in lanes:
            if lane not in CAPTURE_LANES:
                raise ValueError(f"lanes: unknown lane {lane!r}; expected some of {CAPTURE_LANES}")
            if lane in STREAM_LANES and lane not in self.venue.stream_lanes:
                raise ValueError(f"lanes: {self.venue.name} publishes no stream for {lane!r}")
        self.lanes = lanes
        if self.partial_depth_levels not in PARTIAL_DEPTH_LEVELS:
            raise ValueError(
                f"partial_depth_levels must be one of {PARTIAL_DEPTH_LEVELS}, "
                f"got {self.partial_depth_levels}"
            )
        if not self.band_pcts or any(not 0 < p < 100 for p in self.band_pcts):
            raise ValueError(f"band_pcts must be percentages in (0, 100), got {self.band_pcts}")
        self.band_pcts = tuple(sorted(set(self.band_pcts)))
        if self.deep_snapshot_limit is None:
            self.deep_snapshot_limit = self.venue.deep_snapshot_limit
        self.venue.validate_snapshot_limit(self.deep_snapshot_limit)
        for name in ("band_interval_s", "deep_snapshot_interval_s", "clock_check_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def rest_base(self) -> str:
        return (self.rest_url or self.venue.rest_base).rstrip("/")

    @property
    def streams_per_connection(self) -> int:
        return self.max_streams_per_connection or self.venue.max_streams_per_connection
