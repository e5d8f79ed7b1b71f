"""The lane registry: every bronze lane, in the order the project lists them, and what is derived
from all of them at once (which lanes a burst can be asked for, their stream names).

Adding a lane: a module beside this one holding its `Lane`, and one line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_pipeline.lanes import (
    agg_trades,
    book_mismatches,
    book_ticker,
    deep_snapshots,
    depth_bands,
    diffs,
    klines,
    l2,
    partial_depth,
    snapshots,
    trades,
)
from orderbook_pipeline.lanes.spec import Lane
from orderbook_pipeline.venues import PARTIAL_DEPTH_LEVELS

if TYPE_CHECKING:
    from orderbook_pipeline.venues import Venue

LANES: dict[str, Lane] = {
    module.LANE.name: module.LANE
    for module in (
        l2,
        diffs,
        snapshots,
        trades,
        agg_trades,
        book_ticker,
        partial_depth,
        depth_bands,
        deep_snapshots,
        book_mismatches,
        klines,
    )
}


def lane(name: str) -> Lane:
    try:
        return LANES[name]
    except KeyError:
        raise ValueError(f"unknown lane {name!r}; known: {', '.join(LANES)}") from None


# Lanes a burst can be asked for: fed by the depth stream and the local book, by streams of
# their own, by periodic REST calls. ("snapshots" are written by every burst, "book_mismatches"
# whenever a check finds the local book differs from the exchange's, klines by their asset.)
BOOK_LANES = tuple(n for n, spec in LANES.items() if spec.feed == "book")
STREAM_LANES = tuple(n for n, spec in LANES.items() if spec.feed == "stream")
CAPTURE_LANES = (*BOOK_LANES, *STREAM_LANES, *(n for n, s in LANES.items() if s.feed == "rest"))


def stream_name(venue: Venue, lane_name: str, symbol: str, partial_levels: int = 20) -> str:
    """The stream that feeds a lane on `venue` (symbols are lower case in stream names)."""
    spec = lane(lane_name)
    if spec.feed == "book":
        return venue.depth_stream(symbol)
    if spec.stream is None or lane_name not in venue.stream_lanes:
        raise ValueError(f"{venue.name} publishes no stream for lane {lane_name!r}")
    if "{levels}" in spec.stream and partial_levels not in PARTIAL_DEPTH_LEVELS:
        raise ValueError(f"partial depth levels must be one of {PARTIAL_DEPTH_LEVELS}")
    return symbol.lower() + spec.stream.format(levels=partial_levels)
