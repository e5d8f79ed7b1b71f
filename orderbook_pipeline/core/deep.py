"""The deep part of one book side: levels behind the ordered top region, kept compact.

A 5,000-level side held as a Python dict costs ~80 bytes a level (two float objects plus the
entry), so 200 symbols would need ~160 MB for their books alone. Here the deep levels are two
sorted float64 arrays (16 bytes a level). Changes to them are appended to a small pending log
(8 bytes a number) and merged in one vectorised pass when the log fills up or when the top
region needs levels from behind it, so a change deep in the book costs two appends, not a sort.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

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
        log = np.array(self.pending, dtype=np.float64).reshape(-1, 2)
        pp, pq = log[:, 0], log[:, 1]
        del self.pending[:]
        order = np.argsort(pp, kind="stable")  # stable: equal prices keep arrival order
        sp, sq = pp[order], pq[order]
        last = np.empty(len(sp), dtype=bool)
        last[:-1] = sp[1:] != sp[:-1]
        last[-1] = True
        up, uq = sp[last], sq[last]
        px, qty = self.px, self.qty
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
        self.px, self.qty = px, qty

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

    def run_sums(
        self, bounds: Sequence[float], high_is_best: bool
    ) -> tuple[list[float], list[float], list[int]]:
        """Liquidity between consecutive bounds, read-only: pending changes count as applied
        but stay pending (a merge here would cost 30-500 µs at 5,000 levels, and calling it
        every second would undo the batching that makes changes behind the region cheap).

        `bounds` are distinct and best first (descending when high_is_best, for bids).
        Run i holds the levels at or better than bounds[i] and worse than bounds[i - 1] (run 0:
        at or better than bounds[0]). Returns per run: the sum of qty, the sum of px * qty and
        the number of levels. Each sum adds only positive terms: numpy's add.reduceat (pairwise)
        over the stored levels of the run, with the quantities that pending changes replaced
        (0 for a deletion), plus the same over the pending changes that add new levels."""
        nb = len(bounds)
        if not nb:
            return [], [], []
        px, qty = self.px, self.qty
        n = len(px)
        # Work on segments in ascending price order; run i is segment nb - 1 - i for bids.
        asc = list(bounds[::-1]) if high_is_best else list(bounds)
        if high_is_best:  # segment j: asc[j] <= p < asc[j + 1], the last unbounded above
            edges: list[int] = np.searchsorted(px, asc, "left").tolist()
            s0, s1 = edges[0], n
            starts = [e - s0 for e in edges]
        else:  # segment j: asc[j - 1] < p <= asc[j], the first unbounded below
            edges = np.searchsorted(px, asc, "right").tolist()
            s0, s1 = 0, edges[-1]
            starts = [0, *edges[:-1]]
        m = s1 - s0
        ends = [*starts[1:], m]
        counts = [e - s for s, e in zip(starts, ends, strict=True)]
        filled = [j for j in range(nb) if counts[j]]  # segments holding stored levels
        q = qty[s0:s1]
        sums_q = [0.0] * nb
        sums_n = [0.0] * nb
        if self.pending:
            q = self._overlay(q, s0, asc, high_is_best, counts, sums_q, sums_n)
        if filled:
            # reduceat over the first index of each filled segment: strictly increasing and
            # inside the slice (an empty segment would get q[start], not 0).
            at = [starts[j] for j in filled]
            stored_q: list[float] = np.add.reduceat(q, at).tolist()
            stored_n: list[float] = np.add.reduceat(px[s0:s1] * q, at).tolist()
            for j, sq, sn in zip(filled, stored_q, stored_n, strict=True):
                sums_q[j] = sq + sums_q[j]
                sums_n[j] = sn + sums_n[j]
        if high_is_best:
            sums_q.reverse()
            sums_n.reverse()
            counts.reverse()
        return sums_q, sums_n, counts

    def _overlay(
        self,
        q: Floats,
        s0: int,
        asc: list[float],
        high_is_best: bool,
        counts: list[int],
        sums_q: list[float],
        sums_n: list[float],
    ) -> Floats:
        """The pending changes inside the bounds, applied to run_sums' segments: returns `q`
        (the stored quantities from index s0), in a copy with the replaced quantities; adjusts
        the level counts and puts the sums of the new levels into sums_q / sums_n."""
        log = np.array(self.pending, dtype=np.float64)
        pp, pq = log[0::2], log[1::2]
        inside = pp >= asc[0] if high_is_best else pp <= asc[-1]
        if not inside.all():
            pp, pq = pp[inside], pq[inside]
        if not len(pp):
            return q
        order = np.argsort(pp, kind="stable")  # equal prices keep arrival order
        sp = pp[order]
        last = np.empty(len(sp), dtype=bool)
        last[:-1] = sp[1:] != sp[:-1]
        last[-1] = True
        order = order[last]
        up, uq = pp[order], pq[order]  # ascending prices, the last change of each
        px = self.px
        n = len(px)
        at = np.searchsorted(px, up)
        found = px[np.minimum(at, n - 1)] == up if n else np.zeros(len(up), dtype=bool)
        if found.any():
            q = q.copy()
            q[at[found] - s0] = uq[found]  # a replaced quantity, or 0 for a deletion
        new = ~found & (uq > 0.0)
        # Segment j of the ascending prices `up`: indices cuts[j] to cuts[j + 1].
        if high_is_best:
            cuts = [*np.searchsorted(up, asc[1:], "left").tolist(), len(up)]
            cuts.insert(0, 0)
        else:
            cuts = [0, *np.searchsorted(up, asc, "right").tolist()]
        # Level count changes: +1 for a new level, -1 for a deleted one (exact integer sums).
        delta = np.cumsum(new.astype(np.int64) - (found & (uq == 0.0))).tolist()
        delta.insert(0, 0)
        nb = len(asc)
        for j in range(nb):
            counts[j] += delta[cuts[j + 1]] - delta[cuts[j]]
        if new.any():
            new_q = uq * new  # 0 where the change is not a new level
            filled = [j for j in range(nb) if cuts[j] < cuts[j + 1]]
            at_cuts = [cuts[j] for j in filled]
            run_q: list[float] = np.add.reduceat(new_q, at_cuts).tolist()
            run_n: list[float] = np.add.reduceat(up * new_q, at_cuts).tolist()
            for j, rq, rn in zip(filled, run_q, run_n, strict=True):
                sums_q[j] = rq
                sums_n[j] = rn
        return q
