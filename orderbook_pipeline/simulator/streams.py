"""Stream names the bundled exchange serves, which connection path serves each, and the payloads
of the streams derived from the book (bookTicker, partial depth). No I/O here.

Names follow the lane registry (lanes/registry.py `stream_name`): `<sym>@depth@100ms` /
`<sym>@depth` (diff), `<sym>@trade` (spot, Binance.US), `<sym>@aggTrade`, `<sym>@bookTicker`
and `<sym>@depth<5|10|20>[@<period>ms]` (partial depth).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from orderbook_pipeline.simulator.market import Event, Market
from orderbook_pipeline.simulator.phantom import phantom_level
from orderbook_pipeline.venues import PARTIAL_DEPTH_LEVELS, Venue

# The market steps once per nominal 100 ms tick: stream periods are counted in these ticks.
TICK_MS = 100
_PARTIAL = re.compile(r"depth(\d+)(?:@(\d+)ms)?")


class Kind(StrEnum):
    DEPTH = "depth"  # diff depth: every event
    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    BOOK_TICKER = "bookTicker"
    PARTIAL = "partial"


# Extra streams in the order their frames follow a tick's depth event.
EXTRA_KINDS = (Kind.TRADE, Kind.AGG_TRADE, Kind.BOOK_TICKER, Kind.PARTIAL)


@dataclass(frozen=True, slots=True)
class StreamKey:
    symbol: str
    kind: Kind
    levels: int = 0  # partial depth only
    period_ms: int = 0  # partial depth only


def _partial_periods(venue: Venue) -> tuple[int, tuple[int, ...]]:
    """(period of the name without @...ms, accepted explicit periods) of partial depth."""
    if venue.has_prev_update_id:  # USD-M: @depthN is 250 ms; 100 and 500 ms also exist
        return 250, (100, 250, 500)
    return 1000, (100, 1000)  # spot and Binance.US: @depthN is 1000 ms


def parse_stream(venue: Venue, name: str, symbols: dict[str, str]) -> StreamKey | None:
    """The stream a name subscribes to, or None for a name this exchange never feeds.

    `symbols` maps lower-case symbols to upper case. Names are matched case-insensitively.
    """
    sym, _, rest = name.lower().partition("@")
    symbol = symbols.get(sym)
    if symbol is None:
        return None
    if rest in ("depth@100ms", "depth"):
        return StreamKey(symbol, Kind.DEPTH)
    if rest == "trade":
        return StreamKey(symbol, Kind.TRADE) if "trades" in venue.stream_lanes else None
    if rest == "aggtrade":
        return StreamKey(symbol, Kind.AGG_TRADE)
    if rest == "bookticker":
        return StreamKey(symbol, Kind.BOOK_TICKER)
    match = _PARTIAL.fullmatch(rest)
    if match is None or int(match[1]) not in PARTIAL_DEPTH_LEVELS:
        return None
    default, allowed = _partial_periods(venue)
    period = int(match[2]) if match[2] else default
    if period not in allowed:
        return None
    return StreamKey(symbol, Kind.PARTIAL, int(match[1]), period)


def path_scope(venue: Venue, path: str) -> tuple[str, str]:
    """(path without the venue's prefix, the prefix it had: "" when none)."""
    for prefix in (venue.ws_path_prefix, venue.market_path_prefix):
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return path[len(prefix) :] or "/", prefix
    return path, ""


def served_on(venue: Venue, kind: Kind, scope: str) -> bool:
    """Whether a connection opened under path prefix `scope` receives a stream of `kind`.

    USD-M serves aggTrade on "/market" only and depth, partial depth and bookTicker on
    "/public" only. A connection without a prefix (Binance retired those paths on USD-M; kept
    here so older clients and tests keep working) and spot-like venues get everything.
    """
    if not scope or not venue.market_path_prefix:
        return True
    if scope == venue.market_path_prefix:
        return kind is Kind.AGG_TRADE
    return kind is not Kind.AGG_TRADE and kind is not Kind.TRADE


def partial_due(period_ms: int, tick: int) -> bool:
    """Whether a partial-depth stream of this period sends at tick number `tick` (from 1)."""
    return (tick * TICK_MS) // period_ms != ((tick - 1) * TICK_MS) // period_ms


def book_ticker_payload(market: Market, event: Event) -> dict[str, Any]:
    """bookTicker of the top of book after `event` (spot: no event time)."""
    bb, bq, ba, aq = event.top
    fp, fq = market.fmt_price, market.fmt_qty
    if market.venue.has_prev_update_id:
        return {
            "e": "bookTicker",
            "u": event.final_update_id,
            "s": market.symbol,
            "b": fp(bb),
            "B": fq(bq),
            "a": fp(ba),
            "A": fq(aq),
            "T": event.t_ms,
            "E": event.e_ms,
        }
    return {
        "u": event.final_update_id,
        "s": market.symbol,
        "b": fp(bb),
        "B": fq(bq),
        "a": fp(ba),
        "A": fq(aq),
    }


def partial_payload(market: Market, event: Event, levels: int) -> dict[str, Any]:
    """Partial depth: the true top `levels` levels after `event`, in the venue's format."""
    bids, asks = market.true_book(event.final_update_id, levels)
    b, a = [list(x) for x in bids], [list(x) for x in asks]
    if market.venue.has_prev_update_id:
        return {
            "e": "depthUpdate",
            "E": event.e_ms,
            "T": event.t_ms,
            "s": market.symbol,
            "U": event.first_update_id,
            "u": event.final_update_id,
            "pu": event.prev_final_update_id,
            "b": b,
            "a": a,
        }
    return {"lastUpdateId": event.final_update_id, "bids": b, "asks": a}


def corrupted_payload(
    market: Market, event: Event, distance: int, side: str, horizon_events: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the event's payload plus one change the true book lacks, what was corrupted).

    For the corrupt_level fault; `event` must be the market's latest (phantom_level reads the
    live book and looks ahead from it).
    """
    is_bid = side == "bid"
    key = "b" if is_bid else "a"
    payload = event.payload
    scale = 10**market.spec.price_decimals
    # Prices this event changes are not eligible: the phantom must be a change of its own.
    changed = {round(Decimal(p) * scale) for k in "ba" for p, _ in payload[k]}
    price, qty = phantom_level(market, is_bid, distance, changed, horizon_events)
    px, q = market.fmt_price(price), market.fmt_qty(qty)
    # distance 0 may name a price the event already changes: the stream's quantity replaces it.
    levels = [list(level) for level in payload[key] if Decimal(level[0]) != Decimal(px)]
    levels.append([px, q])
    levels.sort(key=lambda level: Decimal(level[0]), reverse=is_bid)
    record = {
        "symbol": market.symbol,
        "update_id": event.final_update_id,
        "side": side,
        "price": px,
        "qty": q,
    }
    return {**payload, key: levels}, record
