"""Book verification: the local book compared level by level with what the exchange publishes.

Binance publishes no checksum; the only ground truth is a snapshot (or the top-N and best
bid/ask streams, which carry the update id of the book they show). Pure logic, no I/O:

- A deep snapshot is requested while the book is at some id B and answered at its own
  lastUpdateId L >= B (a snapshot older than B cannot be compared: it is "not compared"). The
  book's levels are copied when the request is sent and every event applied afterwards is
  journaled, so the state at L is rebuilt exactly by replaying the journal up to L, however far
  the live book has run ahead by the time the answer arrives. On the real exchange L can fall
  inside an event's [U, u] range; the levels that event changed are then unknown at L and left
  out of the comparison (every other level is the same before and after the event).
- Only the price range both sides know exactly is compared: a snapshot cut at its `limit`
  shows nothing beyond its last level, and the local book knows nothing beyond the last level of
  the (truncated) snapshot it was built from, except the levels that changed since.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Level = tuple[float, float]
INF = float("inf")


@dataclass(frozen=True, slots=True)
class KnownRange:
    """Prices the local book holds exactly: bids at or above bid_floor, asks at or below
    ask_ceiling (0 / +inf when the snapshot the book was built from was not truncated)."""

    bid_floor: float = 0.0
    ask_ceiling: float = INF


def snapshot_range(bids: Sequence[Level], asks: Sequence[Level], limit: int) -> KnownRange:
    """The range a snapshot shows completely: everything, unless a side was cut at `limit`
    (then only down to its last level). Levels come best first."""
    return KnownRange(
        bid_floor=min(p for p, _ in bids) if len(bids) >= limit and bids else 0.0,
        ask_ceiling=max(p for p, _ in asks) if len(asks) >= limit and asks else INF,
    )


@dataclass(frozen=True, slots=True)
class Difference:
    side: str  # "bid" or "ask"
    px: float
    local_qty: float | None  # None: the level is absent locally
    exchange_qty: float | None  # None: the exchange has no such level

    def as_record(self) -> dict[str, object]:
        return {
            "side": self.side,
            "px": self.px,
            "local_qty": self.local_qty,
            "exchange_qty": self.exchange_qty,
        }


@dataclass(slots=True)
class Comparison:
    compared: int  # distinct prices compared
    differences: list[Difference]

    @property
    def matches(self) -> bool:
        return not self.differences


def _compare_side(
    side: str,
    local: dict[float, float],
    exchange: dict[float, float],
    keep: Iterable[float],
) -> tuple[int, list[Difference]]:
    diffs = []
    compared = 0
    for px in sorted(set(keep)):
        compared += 1
        mine, theirs = local.get(px), exchange.get(px)
        if mine != theirs:
            diffs.append(Difference(side, px, mine, theirs))
    return compared, diffs


def compare_books(
    local_bids: dict[float, float],
    local_asks: dict[float, float],
    snap_bids: Sequence[Level],
    snap_asks: Sequence[Level],
    limit: int,
    known: KnownRange,
    excluded: frozenset[float] = frozenset(),
) -> Comparison:
    """Compare a local book state with a snapshot of the same update id, level by level, over
    the prices both know exactly (see the module doc), leaving out `excluded` prices."""
    shown = snapshot_range(snap_bids, snap_asks, limit)
    bid_floor = max(shown.bid_floor, known.bid_floor)
    ask_ceiling = min(shown.ask_ceiling, known.ask_ceiling)
    ex_bids = {p: q for p, q in snap_bids if q}
    ex_asks = {p: q for p, q in snap_asks if q}
    n_bids, d_bids = _compare_side(
        "bid",
        local_bids,
        ex_bids,
        (p for p in (*local_bids, *ex_bids) if p >= bid_floor and p not in excluded),
    )
    n_asks, d_asks = _compare_side(
        "ask",
        local_asks,
        ex_asks,
        (p for p in (*local_asks, *ex_asks) if p <= ask_ceiling and p not in excluded),
    )
    return Comparison(n_bids + n_asks, d_bids + d_asks)


def compare_top(
    local_bids: Sequence[Level],
    local_asks: Sequence[Level],
    ex_bids: Sequence[Level],
    ex_asks: Sequence[Level],
) -> Comparison:
    """Compare the top N the exchange published (partial depth, or N = 1 for bookTicker) with
    the local top at the same update id.

    Each list is best first and holds at most N levels. Only prices inside both lists' ranges
    are compared (at or better than the worse of the two Nth prices), so a level present on one
    side only shows up once, not again as the level it pushed out of the other list.
    """
    diffs: list[Difference] = []
    compared = 0
    for side, mine, theirs, better in (
        ("bid", local_bids, ex_bids, True),
        ("ask", local_asks, ex_asks, False),
    ):
        if not mine or not theirs:
            if mine or theirs:  # one side empty, the other not
                for p, q in mine:
                    diffs.append(Difference(side, p, q, None))
                for p, q in theirs:
                    diffs.append(Difference(side, p, None, q))
                compared += len(mine) + len(theirs)
            continue
        n = min(len(mine), len(theirs))
        # The worse of the two lists' last prices bounds the range both cover, unless a list is
        # shorter than the other (then the exchange or we hold fewer levels: compare all).
        if len(mine) == len(theirs):
            edge = (
                max(mine[n - 1][0], theirs[n - 1][0])
                if better
                else min(mine[n - 1][0], theirs[n - 1][0])
            )
        else:
            edge = -INF if better else INF
        if better:
            m = {p: q for p, q in mine if p >= edge}
            t = {p: q for p, q in theirs if p >= edge}
        else:
            m = {p: q for p, q in mine if p <= edge}
            t = {p: q for p, q in theirs if p <= edge}
        c, d = _compare_side(side, m, t, (*m, *t))
        compared += c
        diffs += d
    return Comparison(compared, diffs)


@dataclass(slots=True)
class JournaledEvent:
    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]


@dataclass(slots=True)
class PendingVerification:
    """The book as it was when a verifying snapshot was requested, plus every event applied
    since: enough to rebuild the book exactly at any later update id (see the module doc)."""

    base_id: int
    bids: dict[float, float]
    asks: dict[float, float]
    journal: list[JournaledEvent] = field(default_factory=list)

    def record(self, first_id: int, last_id: int, bids: list[Level], asks: list[Level]) -> None:
        self.journal.append(JournaledEvent(first_id, last_id, bids, asks))

    @property
    def last_id(self) -> int:
        return self.journal[-1].last_id if self.journal else self.base_id

    def state_at(
        self, update_id: int
    ) -> tuple[dict[float, float], dict[float, float], frozenset[float]] | None:
        """(bids, asks, prices unknown at update_id) of the book at update_id; None when the
        snapshot is older than the copy, or newer than every journaled event (not yet there)."""
        if update_id < self.base_id or update_id > self.last_id:
            return None
        bids, asks = dict(self.bids), dict(self.asks)
        excluded: frozenset[float] = frozenset()
        for ev in self.journal:
            if ev.last_id <= update_id:
                _apply(bids, ev.bids)
                _apply(asks, ev.asks)
                continue
            if ev.first_id <= update_id:
                # update_id lies inside this event: the levels it changes are unknown there.
                excluded = frozenset(p for p, _ in (*ev.bids, *ev.asks))
            break
        return bids, asks, excluded


def _apply(side: dict[float, float], levels: Iterable[Level]) -> None:
    for p, q in levels:
        if q:
            side[p] = q
        else:
            side.pop(p, None)
