"""The three Binance venues, defined in one place.

Every endpoint, stream name, limit, weight and sync rule the capture or the bundled exchange
needs comes from here (Binance's API documentation as of late 2026). When Binance changes a
rule, this is the only file to edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlsplit

PARTIAL_DEPTH_LEVELS = (5, 10, 20)  # the only sizes of <sym>@depth<N>@100ms

# Binance refuses more than this many websocket connection attempts per 5 minutes per IP (every
# venue); a burst keeps to it across all its connections.
CONNECTION_ATTEMPTS_PER_5M = 300
# The longest combined-stream URL a connection is opened with: web servers commonly refuse a
# request line beyond 8 KiB (websockets, the bundled exchange's server, nginx), so a long list of
# streams is split over more connections instead.
MAX_STREAM_URL_CHARS = 8000
# Symbols as Binance spells them in REST and events: upper-case letters and digits, and the
# underscore of USD-M delivery contracts (BTCUSDT_210924); at most 20 characters (spot's bound).
# They name directories (symbol=...) and stream names, so nothing else may pass.
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9_]{0,19}")


def symbol_problem(symbol: str) -> str | None:
    """Why `symbol` cannot be a Binance symbol, or None."""
    if SYMBOL_PATTERN.fullmatch(symbol):
        return None
    shown = symbol if len(symbol) <= 40 else f"{symbol[:40]}... ({len(symbol)} characters)"
    return (
        f"{shown!r} is not a Binance symbol: upper-case letters and digits (and _), "
        "1 to 20 characters, e.g. BTCUSDT"
    )


def normalised_symbols(symbols: Iterable[str]) -> list[str]:
    """Symbols as Binance spells them: stripped, upper case, blanks and repeats dropped (in
    order). The one rule the configuration, a burst's settings and the CLI all apply."""
    return list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))


class SyncRule(StrEnum):
    """How a local book is kept in step with the diff stream (see core/sync.py)."""

    SPOT = "spot"  # current spot rule (2024-12, corrected 2025-11)
    SPOT_LEGACY = "spot_legacy"  # the older spot rule Binance.US still documents
    FUTURES = "futures"  # USD-M: chained by `pu`


@dataclass(frozen=True)
class Venue:
    name: str
    rest_base: str
    ws_base: str
    # Path prefix of the depth streams on the websocket host ("/public" for USD-M since 2026-04-23).
    ws_path_prefix: str
    api_prefix: str
    depth_stream_suffix: str
    max_snapshot_limit: int
    # Futures accept only these limits; None means any limit from 1 to max_snapshot_limit.
    allowed_snapshot_limits: tuple[int, ...] | None
    # (largest limit, weight) tiers, ascending.
    snapshot_weight_tiers: tuple[tuple[int, int], ...]
    weight_limit_1m: int
    server_ping_interval_s: float
    server_pong_timeout_s: float
    max_client_messages_per_s: int
    max_streams_per_connection: int
    sync_rule: SyncRule
    # USD-M events carry `pu` (previous final update id) and `T` (transaction time).
    has_prev_update_id: bool
    # Spot sends {"e":"serverShutdown"} before a maintenance close.
    sends_server_shutdown: bool
    # exchangeInfo: spot-like venues filter by ?symbol= (an unknown one is a 400); USD-M lists all.
    exchange_info_by_symbol: bool
    exchange_info_weight: int
    default_snapshot_limit: int  # what the venue uses when `limit` is absent
    # Stream lanes the venue publishes (USD-M has no raw <sym>@trade stream).
    stream_lanes: tuple[str, ...]
    # USD-M serves aggTrade and kline on "/market" since 2026-04-23, depth and bookTicker on
    # "/public"; spot and Binance.US serve everything on one path ("").
    market_path_prefix: str
    # GET klines: largest `limit`, and (largest limit, weight) tiers ascending.
    klines_max_limit: int
    klines_weight_tiers: tuple[tuple[int, int], ...]
    # Largest snapshot of the periodic deep snapshots that verify the book.
    deep_snapshot_limit: int
    # Spot prints prices and quantities with 8 decimals ("26127.87000000"); USD-M prints exactly
    # the tick/step decimals ("7.05"). None means tick/step decimals.
    text_decimals: int | None

    # --- REST paths -------------------------------------------------------------------
    @property
    def depth_path(self) -> str:
        return f"{self.api_prefix}/depth"

    @property
    def exchange_info_path(self) -> str:
        return f"{self.api_prefix}/exchangeInfo"

    @property
    def time_path(self) -> str:
        return f"{self.api_prefix}/time"

    @property
    def ping_path(self) -> str:
        return f"{self.api_prefix}/ping"

    @property
    def klines_path(self) -> str:
        return f"{self.api_prefix}/klines"

    def klines_weight(self, limit: int) -> int:
        for max_limit, weight in self.klines_weight_tiers:
            if limit <= max_limit:
                return weight
        raise ValueError(f"{self.name}: klines limit {limit} exceeds {self.klines_max_limit}")

    # --- streams ------------------------------------------------------------------------
    def depth_stream(self, symbol: str) -> str:
        """Stream name of the diff-depth stream: symbols are lower case in stream names."""
        return f"{symbol.lower()}{self.depth_stream_suffix}"

    def lane_path_prefix(self, lane: str) -> str:
        """Websocket path prefix of the connection that carries a lane's stream."""
        if lane == "agg_trades" and self.market_path_prefix:
            return self.market_path_prefix
        return self.ws_path_prefix

    def combined_stream_url(
        self, streams: list[str], ws_base: str | None = None, path_prefix: str | None = None
    ) -> str:
        """URL of a combined-stream connection; frames arrive as {"stream": ..., "data": ...}."""
        base = (ws_base or self.ws_base).rstrip("/")
        want = self.ws_path_prefix if path_prefix is None else path_prefix
        # A base that already carries a venue prefix (the real USD-M URL) is not prefixed twice.
        path = urlsplit(base).path
        for known in (self.ws_path_prefix, self.market_path_prefix):
            if known and path.endswith(known):
                base = base[: -len(known)]
        return f"{base}{want}/stream?streams={'/'.join(streams)}"

    def stream_groups(
        self,
        streams: list[str],
        per_connection: int,
        ws_base: str | None = None,
        path_prefix: str | None = None,
    ) -> list[list[str]]:
        """`streams` split over connections: at most `per_connection` each, and each URL at
        most MAX_STREAM_URL_CHARS long."""
        empty = len(self.combined_stream_url([], ws_base, path_prefix))
        groups: list[list[str]] = []
        length = 0
        for name in streams:
            if (
                not groups
                or len(groups[-1]) >= per_connection
                or length + len(name) + 1 > (MAX_STREAM_URL_CHARS - empty)
            ):
                groups.append([])
                length = 0
            groups[-1].append(name)
            length += len(name) + 1
        return groups

    # --- snapshots ----------------------------------------------------------------------
    def snapshot_weight(self, limit: int) -> int:
        for max_limit, weight in self.snapshot_weight_tiers:
            if limit <= max_limit:
                return weight
        raise ValueError(f"{self.name}: snapshot limit {limit} exceeds {self.max_snapshot_limit}")

    def snapshot_limit_for(self, symbols: int, weight_safety: float) -> int:
        """The default snapshot depth of a burst of `symbols` symbols.

        The deepest snapshot whose weight for every symbol fits one minute of the budget, so
        all books are in sync within about a minute; but never fewer than 1,000 levels (the
        venue's maximum if lower): the records' top levels stay exact only while the book knows
        every level they can reach, and a shallow snapshot leaves little room for the price to
        move. Spot: 5,000 levels up to 19 symbols, then 1,000 (about two minutes for 200).
        """
        budget = self.weight_limit_1m * weight_safety
        candidates = self.allowed_snapshot_limits or tuple(m for m, _ in self.snapshot_weight_tiers)
        floor = min(1000, self.max_snapshot_limit)
        fitting = [
            n for n in candidates if n >= floor and symbols * self.snapshot_weight(n) <= budget
        ]
        return max(fitting, default=floor)

    def validate_snapshot_limit(self, limit: int) -> None:
        if self.allowed_snapshot_limits is not None:
            if limit not in self.allowed_snapshot_limits:
                raise ValueError(
                    f"{self.name}: snapshot limit must be one of {self.allowed_snapshot_limits}, "
                    f"got {limit}"
                )
        elif not 1 <= limit <= self.max_snapshot_limit:
            raise ValueError(f"{self.name}: snapshot limit must be 1..{self.max_snapshot_limit}")


BINANCE_SPOT = Venue(
    name="binance-spot",
    rest_base="https://api.binance.com",
    ws_base="wss://stream.binance.com:9443",
    ws_path_prefix="",
    api_prefix="/api/v3",
    depth_stream_suffix="@depth@100ms",
    max_snapshot_limit=5000,
    allowed_snapshot_limits=None,
    snapshot_weight_tiers=((100, 5), (500, 25), (1000, 50), (5000, 250)),
    weight_limit_1m=6000,
    server_ping_interval_s=20.0,
    server_pong_timeout_s=60.0,
    max_client_messages_per_s=5,
    max_streams_per_connection=1024,
    sync_rule=SyncRule.SPOT,
    has_prev_update_id=False,
    sends_server_shutdown=True,
    exchange_info_by_symbol=True,
    exchange_info_weight=20,
    default_snapshot_limit=100,
    stream_lanes=("trades", "agg_trades", "book_ticker", "partial_depth"),
    market_path_prefix="",
    klines_max_limit=1000,
    klines_weight_tiers=((1000, 2),),
    deep_snapshot_limit=5000,
    text_decimals=8,
)

BINANCE_USDM = Venue(
    name="binance-usdm",
    rest_base="https://fapi.binance.com",
    ws_base="wss://fstream.binance.com",
    ws_path_prefix="/public",
    api_prefix="/fapi/v1",
    depth_stream_suffix="@depth@100ms",
    max_snapshot_limit=1000,
    allowed_snapshot_limits=(5, 10, 20, 50, 100, 500, 1000),
    snapshot_weight_tiers=((50, 2), (100, 5), (500, 10), (1000, 20)),
    weight_limit_1m=2400,
    server_ping_interval_s=180.0,
    server_pong_timeout_s=600.0,
    max_client_messages_per_s=10,
    max_streams_per_connection=200,
    sync_rule=SyncRule.FUTURES,
    has_prev_update_id=True,
    sends_server_shutdown=False,
    exchange_info_by_symbol=False,
    exchange_info_weight=1,
    default_snapshot_limit=500,
    stream_lanes=("agg_trades", "book_ticker", "partial_depth"),
    market_path_prefix="/market",
    klines_max_limit=1500,
    klines_weight_tiers=((99, 1), (499, 2), (1000, 5), (1500, 10)),
    deep_snapshot_limit=1000,
    text_decimals=None,
)

# Binance.US runs spot's API on its own hosts: only what differs from spot is stated.
BINANCE_US = replace(
    BINANCE_SPOT,
    name="binance-us",
    rest_base="https://api.binance.us",
    ws_base="wss://stream.binance.us:9443",
    snapshot_weight_tiers=((100, 1), (500, 5), (1000, 10), (5000, 50)),
    weight_limit_1m=1200,
    server_ping_interval_s=180.0,
    server_pong_timeout_s=600.0,
    sync_rule=SyncRule.SPOT_LEGACY,
    sends_server_shutdown=False,
    exchange_info_weight=10,
)

VENUES: dict[str, Venue] = {v.name: v for v in (BINANCE_SPOT, BINANCE_USDM, BINANCE_US)}


def get_venue(name: str) -> Venue:
    try:
        return VENUES[name]
    except KeyError:
        raise ValueError(f"unknown venue {name!r}; expected one of {sorted(VENUES)}") from None
