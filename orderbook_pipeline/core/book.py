"""An exact limit order book for one symbol, built for a per-event top-N read.

Prices and quantities are doubles parsed from the exchange's decimal strings. That is exact
here: a decimal with at most 15 significant digits maps to a distinct double, in the same
order (Binance prices and quantities have at most 13), so the book of doubles is the exchange's
book, equal levels compare equal and the order of prices is never wrong. Records carry these
doubles as they are, so a stored `px` equals float() of the string the exchange sent.

Each side keeps its best levels (the *region*) in a dict plus an ascending key list maintained
with bisect, and everything behind the region in DeepLevels (compact sorted arrays with batched
merges). The region always holds every level at or better than its worst key, so its first N
levels are the book's top N. Most changes happen near the touch: they cost a dict operation,
plus a short memmove when a level appears or disappears inside the region. A change behind the
region costs two appends. Reading the top N is a slice. When deletions shrink the region below
the deepest configured record depth, it is refilled from the deep levels; when insertions grow
it far beyond, its tail moves back to them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from operator import itemgetter

import numpy as np

from orderbook_pipeline.core import deep as deep_levels
from orderbook_pipeline.core.deep import DeepLevels

Level = tuple[float, float]  # (price, quantity)
INF = float("inf")


class BadLevel(ValueError):
    """A price or quantity that cannot be in a book: NaN, infinite, negative, or a zero price."""


class BookSide:
    """One side. Bids and asks differ only in which end of the ascending keys is best."""

    __slots__ = ("_deep", "_keys", "_qty", "apply", "is_bid", "max_region", "min_region")

    def __init__(self, is_bid: bool, min_region: int = 50, region: int = 128) -> None:
        self.is_bid = is_bid
        self._qty: dict[float, float] = {}
        self._keys: list[float] = []  # region prices ascending: best last (bids), first (asks)
        self._deep = DeepLevels()
        self.min_region = min_region  # refill below this many levels
        self.max_region = max(4 * region, 4 * min_region)  # give the tail back above this
        self.apply = self._apply_bids if is_bid else self._apply_asks

    # --- whole-side operations -------------------------------------------------------------
    def clear(self) -> None:
        self._qty.clear()
        self._keys.clear()
        self._deep.clear()

    def load(self, levels: Iterable[Level]) -> None:
        """Replace the side with a snapshot's levels (zero quantities are skipped)."""
        self.clear()
        arr = np.array([lvl for lvl in levels if lvl[1] != 0.0], dtype=np.float64)
        if not len(arr):
            return
        _check(arr)
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
        px, qty = np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1])
        if len(np.unique(px)) != len(px):
            raise BadLevel("a snapshot lists the same price twice")
        self._deep.load(px, qty)
        self._refill(self.max_region // 2)

    # --- per-event updates -----------------------------------------------------------------
    # The capture's hottest code, written out per side rather than paying for a sign flip or an
    # indirect comparison per level. (Applying the region's changes with C-level dict
    # operations instead, on the sorted prefix Binance sends, measured no cheaper: hashing a
    # float, which every dict operation repeats, dominates either way.)
    def _apply_bids(self, levels: list[Level]) -> None:
        """Absolute quantities at prices (0 deletes). The numbers were validated when the event
        was decoded (finite, price > 0, quantity >= 0)."""
        keys = self._keys
        self._loop_bids(levels, keys[0] if keys else INF)
        self._rebalance()

    def _apply_asks(self, levels: list[Level]) -> None:
        keys = self._keys
        self._loop_asks(levels, keys[-1] if keys else -INF)
        self._rebalance()

    def _loop_bids(self, levels: Iterable[Level], worst: float) -> None:
        book, keys = self._qty, self._keys
        pending = self._deep.pending.append
        for p, q in levels:
            if p >= worst:
                if q:
                    if p not in book:
                        insort(keys, p)
                    book[p] = q
                elif book.pop(p, None) is not None:
                    del keys[bisect_left(keys, p)]
                    worst = keys[0] if keys else INF
            else:  # behind the region: logged, merged later
                pending(p)
                pending(q)

    def _loop_asks(self, levels: Iterable[Level], worst: float) -> None:
        book, keys = self._qty, self._keys
        pending = self._deep.pending.append
        for p, q in levels:
            if p <= worst:
                if q:
                    if p not in book:
                        insort(keys, p)
                    book[p] = q
                elif book.pop(p, None) is not None:
                    del keys[bisect_left(keys, p)]
                    worst = keys[-1] if keys else -INF
            else:
                pending(p)
                pending(q)

    def _rebalance(self) -> None:
        deep = self._deep
        if len(deep.pending) >= 2 * deep_levels.PENDING_LIMIT:
            deep.merge()
        n = len(self._keys)
        if n < self.min_region:
            self._refill(self.min_region)
        elif n > self.max_region:
            self._trim()

    def _refill(self, want: int) -> None:
        """Bring levels from behind the region to the front until it holds `want` (or all)."""
        missing = max(want, self.max_region // 4) - len(self._keys)
        if missing <= 0:
            return
        if self.is_bid:
            px, qty = self._deep.take_highest(missing)
            self._keys[:0] = px
        else:
            px, qty = self._deep.take_lowest(missing)
            self._keys.extend(px)
        self._qty.update(zip(px, qty, strict=True))

    def _trim(self) -> None:
        """Move the worst half of an overgrown region behind it."""
        keys, book, deep = self._keys, self._qty, self._deep
        keep = self.max_region // 2
        if self.is_bid:
            moved = keys[: len(keys) - keep]
            del keys[: len(keys) - keep]
        else:
            moved = keys[keep:]
            del keys[keep:]
        for p in moved:
            deep.change(p, book.pop(p))

    # --- reads ------------------------------------------------------------------------------
    def best(self) -> float | None:
        keys = self._keys
        if not keys:
            return None
        return keys[-1] if self.is_bid else keys[0]

    def top_prices(self, n: int) -> list[float]:
        """The n best prices, best first (fewer if the side is thinner)."""
        keys = self._keys
        return keys[: -n - 1 : -1] if self.is_bid else keys[:n]

    def quantities(self, prices: list[float]) -> Sequence[float]:
        """The quantities at `prices` (region prices, e.g. from top_prices), in order."""
        if len(prices) > 1:
            # One C call for all lookups (callgrind: 18% fewer instructions than map()).
            result: tuple[float, ...] = itemgetter(*prices)(self._qty)
            return result
        return [self._qty[p] for p in prices]

    def top_lists(self, n: int) -> tuple[list[float], Sequence[float]]:
        """(prices, quantities) of the n best levels, best first."""
        prices = self.top_prices(n)
        return prices, self.quantities(prices)

    def top(self, n: int) -> list[Level]:
        prices = self.top_prices(n)
        return list(zip(prices, self.quantities(prices), strict=True))

    def levels(self) -> list[Level]:
        """Every level of the side, best first (merges pending deep changes)."""
        deep = self._deep.items()
        region = [(p, self._qty[p]) for p in self._keys]
        ascending = deep + region if self.is_bid else region + deep
        return ascending[::-1] if self.is_bid else ascending

    def sums_within(self, bound: float) -> tuple[float, float, int]:
        """(sum of qty, sum of px * qty, number of levels) over the levels at or better than
        `bound` (bids: px >= bound, asks: px <= bound). See sums_within_many."""
        return self.sums_within_many((bound,))[0]

    def sums_within_many(self, bounds: Sequence[float]) -> list[tuple[float, float, int]]:
        """sums_within for each bound, in the order given. Read-only: pending deep changes are
        accounted for, not merged.

        Exact over every level the side holds, region and deep alike, but the sums are of the
        exact doubles (px * qty rounded once per level), not exact decimals. Summation order,
        shared with the compiled core so that both write the same bytes: one running sum over
        the levels best first, from 0.0, each level's qty and px * qty added left to right
        (numpy's cumsum is that sequential sum); a bound's figures are the running sums after
        its last level. Every term is positive, so a wider bound never gets a smaller sum and
        the relative error stays within about levels * 2**-53.

        Cost: a bisect per bound and one itemgetter over the region levels inside the widest
        bound; when a bound reaches behind the region, a slice of the deep levels inside it
        and, while the deep side has pending changes, a sort of the pending log (still well
        below a merge).
        """
        if not bounds:
            return []
        keys = self._keys
        n_region = len(keys)
        widest = min(bounds) if self.is_bid else max(bounds)
        inside = n_region - bisect_left(keys, widest) if self.is_bid else bisect_right(keys, widest)
        if not inside:
            return [(0.0, 0.0, 0) for _ in bounds]
        prices = keys[: -inside - 1 : -1] if self.is_bid else keys[:inside]
        px = np.array(prices, dtype=np.float64)
        qty = np.array(itemgetter(*prices)(self._qty) if inside > 1 else [self._qty[prices[0]]])
        deep = self._deep
        if inside == n_region and (len(deep.px) or deep.pending):
            # Every deep price (pending ones too) is worse than the region's worst key.
            deep_px, deep_qty = deep.within(widest, self.is_bid)
            if self.is_bid:  # ascending: the best deep bid is last
                deep_px, deep_qty = deep_px[::-1], deep_qty[::-1]
            px, qty = np.concatenate((px, deep_px)), np.concatenate((qty, deep_qty))
        sum_qty = np.cumsum(qty).tolist()
        sum_notional = np.cumsum(px * qty).tolist()
        # Levels at or better than each bound: px is best first (descending for bids).
        if self.is_bid:
            counts = np.searchsorted(-px, [-b for b in bounds], "right").tolist()
        else:
            counts = np.searchsorted(px, list(bounds), "right").tolist()
        return [(sum_qty[c - 1], sum_notional[c - 1], c) if c else (0.0, 0.0, 0) for c in counts]

    def __len__(self) -> int:
        return len(self._qty) + len(self._deep)


def _check(arr: np.ndarray) -> None:
    if not np.isfinite(arr).all() or (arr[:, 0] <= 0).any() or (arr[:, 1] < 0).any():
        raise BadLevel("a snapshot holds a NaN, infinite, negative or zero-priced level")


class OrderBook:
    __slots__ = ("asks", "bids", "last_update_id")

    def __init__(self, max_depth: int = 50) -> None:
        self.bids = BookSide(is_bid=True, min_region=max_depth)
        self.asks = BookSide(is_bid=False, min_region=max_depth)
        self.last_update_id = 0

    def load(self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)
        self.last_update_id = last_update_id

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.last_update_id = 0

    def apply(self, bids: list[Level], asks: list[Level], last_update_id: int) -> None:
        self.bids.apply(bids)
        self.asks.apply(asks)
        self.last_update_id = last_update_id

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: never a valid book."""
        bid_keys, ask_keys = self.bids._keys, self.asks._keys  # best bid last, best ask first
        return bool(bid_keys) and bool(ask_keys) and bid_keys[-1] >= ask_keys[0]
