"""An exact limit order book for one symbol: integer ticks -> integer lots per side.

Each side is a dict for O(1) updates plus a sorted key list maintained with bisect, so reading
the top N levels is a slice and an update outside the book's existing keys costs one binary search
and one memmove. Bid keys are stored negated so that index 0 is the best level on both sides.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

Level = tuple[int, int]  # (price ticks, quantity lots)


class BookSide:
    __slots__ = ("_keys", "_qty", "_sign")

    def __init__(self, is_bid: bool) -> None:
        self._sign = -1 if is_bid else 1
        self._qty: dict[int, int] = {}
        self._keys: list[int] = []  # sign * price, ascending: best first

    def clear(self) -> None:
        self._qty.clear()
        self._keys.clear()

    def load(self, levels: Iterable[Level]) -> None:
        self.clear()
        for px, qty in levels:
            if qty:
                self._qty[px] = qty
        sign = self._sign
        self._keys = sorted(sign * px for px in self._qty)

    def set(self, px: int, qty: int) -> None:
        """Absolute quantity at a price; zero removes the level (absent levels are ignored)."""
        book = self._qty
        if qty:
            if px not in book:
                insort(self._keys, self._sign * px)
            book[px] = qty
        elif px in book:
            del book[px]
            keys = self._keys
            del keys[bisect_left(keys, self._sign * px)]

    def best(self) -> int | None:
        return self._sign * self._keys[0] if self._keys else None

    def top(self, n: int) -> list[Level]:
        sign, book = self._sign, self._qty
        return [(sign * k, book[sign * k]) for k in self._keys[:n]]

    def __len__(self) -> int:
        return len(self._qty)


class OrderBook:
    __slots__ = ("asks", "bids", "last_update_id")

    def __init__(self) -> None:
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.last_update_id = 0

    def load(self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)
        self.last_update_id = last_update_id

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.last_update_id = 0

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], last_update_id: int) -> None:
        for px, qty in bids:
            self.bids.set(px, qty)
        for px, qty in asks:
            self.asks.set(px, qty)
        self.last_update_id = last_update_id

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: never a valid book."""
        bb, ba = self.bids.best(), self.asks.best()
        return bb is not None and ba is not None and bb >= ba
