"""The deep part of one book side: levels behind the ordered top region, kept compact.

A 5,000-level side held as a Python dict costs ~80 bytes a level (two float objects plus the
entry), so 200 symbols would need ~160 MB for their books alone. Here the deep levels are two
sorted float64 arrays (16 bytes a level). Changes to them are appended to a small pending log
(8 bytes a number) and merged in one vectorised pass when the log fills up or when the top
region needs levels from behind it, so a change deep in the book costs two appends, not a sort.
"""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# Pending changes merged at once: large enough to amortise numpy's per-call overhead (~50 µs per
# merge of a 5,000-level side), small enough to stay a few kB per side.
PENDING_LIMIT = 2048


class DeepLevels:
    """Price -> quantity for the levels behind the top region; prices ascending."""

    __slots__ = ("pending", "px", "qty")
    # pending: the change log, price and quantity interleaved, in arrival order. The book's
    # hot paths append to it directly and call merge() once it holds PENDING_LIMIT changes.

    def __init__(self) -> None:
        self.px: Floats = np.empty(0)
        self.qty: Floats = np.empty(0)
        self.pending = array("d")

    def clear(self) -> None:
        self.px = np.empty(0)
        self.qty = np.empty(0)
        del self.pending[:]

    def load(self, px: Floats, qty: Floats) -> None:
        """Replace the contents with levels sorted by ascending price (no zero quantities)."""
        self.px, self.qty = px, qty
        del self.pending[:]

    def change(self, px: float, qty: float) -> None:
        """Absolute quantity at a price (0 deletes); applied in order at the next merge."""
        self.pending.append(px)
        self.pending.append(qty)
        if len(self.pending) >= 2 * PENDING_LIMIT:
            self.merge()

    @property
    def pending_changes(self) -> int:
        return len(self.pending) // 2

    def __len__(self) -> int:
        self.merge()
        return len(self.px)

    def merge(self) -> None:
        """Fold the pending changes into the sorted arrays (the last change of a price wins)."""
        if not self.pending:
            return
        log = np.array(self.pending, dtype=np.float64)
        del self.pending[:]
        self.px, self.qty = _fold(self.px, self.qty, log[0::2], log[1::2])

    def take_highest(self, n: int) -> tuple[list[float], list[float]]:
        """Remove and return the n highest-priced levels, ascending (bids refill from here)."""
        self.merge()
        if n <= 0 or not len(self.px):
            return [], []
        cut = max(0, len(self.px) - n)
        px, qty = self.px[cut:].tolist(), self.qty[cut:].tolist()
        self.px, self.qty = self.px[:cut].copy(), self.qty[:cut].copy()
        return px, qty

    def take_lowest(self, n: int) -> tuple[list[float], list[float]]:
        """Remove and return the n lowest-priced levels, ascending (asks refill from here)."""
        self.merge()
        if n <= 0 or not len(self.px):
            return [], []
        px, qty = self.px[:n].tolist(), self.qty[:n].tolist()
        self.px, self.qty = self.px[n:].copy(), self.qty[n:].copy()
        return px, qty

    def items(self) -> list[tuple[float, float]]:
        """Every level, ascending by price."""
        self.merge()
        return list(zip(self.px.tolist(), self.qty.tolist(), strict=True))

    def within(self, bound: float, high_is_best: bool) -> tuple[Floats, Floats]:
        """(prices, quantities) ascending of the levels at or better than `bound` (p >= bound
        when high_is_best, for bids; p <= bound otherwise), pending changes applied to a copy
        and left pending: a merge here would cost 30-500 µs at 5,000 levels, and calling it
        every second would undo the batching that makes changes behind the region cheap."""
        px, qty = self.px, self.qty
        if high_is_best:
            cut = int(np.searchsorted(px, bound, "left"))
            px, qty = px[cut:], qty[cut:]
        else:
            cut = int(np.searchsorted(px, bound, "right"))
            px, qty = px[:cut], qty[:cut]
        if not self.pending:
            return px, qty
        log = np.array(self.pending, dtype=np.float64)
        pp, pq = log[0::2], log[1::2]
        inside = pp >= bound if high_is_best else pp <= bound
        return _fold(px, qty.copy(), pp[inside], pq[inside])


def _fold(px: Floats, qty: Floats, pp: Floats, pq: Floats) -> tuple[Floats, Floats]:
    """Sorted levels (px, qty) with changes (pp, pq, in arrival order) applied: the last change
    of a price wins, 0 deletes. Writes replaced quantities into `qty`; returns the new arrays."""
    if not len(pp):
        return px, qty
    order = np.argsort(pp, kind="stable")  # stable: equal prices keep arrival order
    sp, sq = pp[order], pq[order]
    last = np.empty(len(sp), dtype=bool)
    last[:-1] = sp[1:] != sp[:-1]
    last[-1] = True
    up, uq = sp[last], sq[last]
    at = np.searchsorted(px, up)
    found = at < len(px)
    found[found] = px[at[found]] == up[found]
    qty[at[found]] = uq[found]
    new = ~found & (uq > 0.0)
    if new.any():
        px = np.insert(px, at[new], up[new])
        qty = np.insert(qty, at[new], uq[new])
    keep = qty > 0.0
    if not keep.all():
        px, qty = px[keep], qty[keep]
    return px, qty
