"""Percent-band depth: a book's liquidity aggregated by distance from mid.

For each percentage p (DEFAULT_BAND_PCTS: 0.01, 0.05, 0.1, 0.5, 1), a band takes in the bids at
or above mid * (1 - p / 100) and the asks at or below mid * (1 + p / 100), with
mid = (best bid + best ask) / 2, and gives their total quantity and notional (sum of px * qty)
per side: one "Band" of lanes/depth_bands.py. Bounds are inclusive and computed in doubles with
exactly those expressions, so a level lying on a bound up to rounding may fall either way.

The figures are sums of the book's exact doubles, not exact decimals: per side and band, a
left-to-right sum over the levels best first (px * qty rounded once per level), which is what
BookSide.sums_within_many computes; nested bands are prefixes of one running sum. All terms are
positive, so the relative error is below (levels - 1) * 2**-53, about 1e-12 at 10,000 levels.

*Complete.* A REST snapshot truncated at its limit says nothing about the levels behind its
worst price: until a diff event changes such a level, the book does not hold it. A band whose
bid bound lies below the snapshot's worst bid (or whose ask bound lies above its worst ask) may
miss liquidity, so its `complete` is False and its sums are a floor. `core/verify.py snapshot_range` gives the
floor and ceiling for a snapshot; a snapshot that lists fewer levels than its limit held the
whole side, whose floor is 0 (ceiling +inf). A snapshot listing exactly `limit` levels is taken
as truncated (the exchange does not say). The limits hold until the book is loaded again.

*When.* `BandSampler` picks the events to compute bands for: the first applied event of each
window of `interval_us` of event time, windows aligned on multiples of `interval_us` since the
epoch (so every symbol's records fall in the same windows). Cost per event: one comparison.

*Cost* (BTCUSDT-like book from the benchmark stream, 5,000 levels a side, ~250-300 in each
region, five bands): ~70-90 µs a call when the deep sides have no pending changes; the pending
logs (up to 2,047 changes a side, read without merging) add a sort and a searchsorted each, so
~200-450 µs a call in a replay (median ~300 µs warm; ~450 µs amortised, caches cold). At one
record per second that is 0.3-0.45 ms of CPU a second for a busy 5,000-level symbol: a third to
a half of what its full capture hot path costs at 10 events a second (82 µs an event,
benchmarks/README.md). Thin books cost far less: the work is in the levels inside the widest
band and in the pending changes among them.
"""

from __future__ import annotations

from collections.abc import Sequence

from orderbook_pipeline.core.book import OrderBook

INF = float("inf")

Band = dict[str, float | bool]


def compute_bands(
    book: OrderBook,
    pcts: Sequence[float],
    known_bid_floor: float = 0.0,
    known_ask_ceiling: float = INF,
) -> tuple[float, list[Band]] | None:
    """(mid, one Band per pct, in the order of `pcts`), or None when either side is empty.

    A band is `complete` when its bid bound >= known_bid_floor and its ask bound <=
    known_ask_ceiling (see the module docstring and core/verify.py snapshot_range). Read-only on the book's
    levels (pending deep changes are merged)."""
    best_bid = book.bids.best()
    best_ask = book.asks.best()
    if best_bid is None or best_ask is None:
        return None
    mid = (best_bid + best_ask) / 2
    bid_bounds = [mid * (1 - p / 100) for p in pcts]
    ask_bounds = [mid * (1 + p / 100) for p in pcts]
    bid_sums = book.bids.sums_within_many(bid_bounds)
    ask_sums = book.asks.sums_within_many(ask_bounds)
    bands: list[Band] = [
        {
            "pct": float(pct),
            "bid_qty": bid[0],
            "ask_qty": ask[0],
            "bid_notional": bid[1],
            "ask_notional": ask[1],
            "complete": lo >= known_bid_floor and hi <= known_ask_ceiling,
        }
        for pct, lo, hi, bid, ask in zip(
            pcts, bid_bounds, ask_bounds, bid_sums, ask_sums, strict=True
        )
    ]
    return mid, bands


class BandSampler:
    """Decides which applied events get a depth_bands record: the first event at or after the
    next due time, then nothing until the next window of `interval_us` of event time (windows
    are [k * interval_us, (k + 1) * interval_us)). At most one record per window per symbol.

    Per event: `if sampler.due(event_us): ...`, or, to skip even the method call,
    `if event_us >= sampler.next_due_us and sampler.due(event_us): ...`. Event time going
    backwards emits nothing until it passes the due time again; `reset()` (e.g. after a resync)
    makes the next event due."""

    __slots__ = ("interval_us", "next_due_us")

    def __init__(self, interval_us: int) -> None:
        if interval_us <= 0:
            raise ValueError(f"interval_us must be positive, got {interval_us}")
        self.interval_us = interval_us
        self.next_due_us = -(2**63)

    @classmethod
    def every(cls, seconds: float) -> BandSampler:
        """A sampler for an interval in seconds (e.g. CaptureSettings.band_interval_s)."""
        return cls(max(1, round(seconds * 1_000_000)))

    def due(self, event_us: int) -> bool:
        """True (and the window is taken) when this event is the first of its window."""
        if event_us < self.next_due_us:
            return False
        interval = self.interval_us
        self.next_due_us = (event_us // interval + 1) * interval
        return True

    def reset(self) -> None:
        self.next_due_us = -(2**63)
