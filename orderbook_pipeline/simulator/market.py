"""Deterministic, seeded order-book market model for the bundled exchange (no I/O).

Each symbol's market is a pure function of (seed, symbol, venue): the same inputs give the same
sequence of level changes and update ids whatever the wall clock does; only the event times
`E`/`T` come from the caller. Prices and quantities are integers internally (ticks and lots) so
the book can never straddle sides through float rounding; strings are produced only at the edge.

History is kept as a compact undo log (price, new qty, old qty per change) rather than book
checkpoints: 50 symbols x 3000 events of full 5000-level checkpoints would cost gigabytes, while
the undo log costs ~0.5 kB per event and any retained book state is rebuilt by undoing events
from the live book.
"""

from __future__ import annotations

import copy
import heapq
import math
import random
from array import array
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orderbook_pipeline.simulator.specs import (
    SymbolSpec,
    make_formatter,
    symbol_spec,
    venue_decimals,
)
from orderbook_pipeline.simulator.trades import (
    Fill,
    TakerFlow,
    agg_trade_payloads,
    trade_payloads,
)
from orderbook_pipeline.venues import Venue

__all__ = ["Event", "Market", "SymbolSpec", "make_formatter", "symbol_spec", "venue_decimals"]

_MIN_LEVELS = 10  # never delete below this many levels a side


@dataclass(frozen=True, slots=True)
class Event:
    symbol: str
    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu on USD-M; for spot the previous event's u
    payload: dict[str, Any]
    e_ms: int = 0  # event time E
    t_ms: int = 0  # transaction time T (USD-M); trades carry it as their trade time
    fills: tuple[Fill, ...] = ()  # the step's taker order, one Fill per price level
    # Best bid, its qty, best ask, its qty (ticks/lots) after the event, and whether any of
    # them differs from the previous event's (a bookTicker frame is due).
    top: tuple[int, int, int, int] = (0, 0, 0, 0)
    top_changed: bool = False


@dataclass(slots=True)
class _Rec:
    """Compact history entry: changes as [price, new_qty, old_qty] triples, bids first."""

    first: int
    final: int
    prev: int
    e_ms: int
    t_ms: int
    n_bids: int
    changes: array[int]
    fills: tuple[Fill, ...]


Levels = list[tuple[str, str]]


class Market:
    """One symbol's simulated book and diff stream."""

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        seed: int = 1,
        levels_per_side: int = 5000,
        median_changes: int = 20,
        history_events: int = 3000,
        max_changes: int = 300,
        taker_probability: float = 0.3,
    ) -> None:
        self.venue = venue
        self.spec = symbol_spec(symbol)
        self.symbol = self.spec.symbol
        self._futures = venue.has_prev_update_id
        pd, qd = venue_decimals(venue, self.spec)
        self.fmt_price = make_formatter(self.spec.price_decimals, pd)
        self.fmt_qty = make_formatter(self.spec.qty_decimals, qd)
        self.lots_per_unit = 10**self.spec.qty_decimals
        # Book evolution and id numbering use separate streams so the book is identical on every
        # venue for a given seed; only the ids differ.
        self._rng = random.Random(f"{seed}:{self.symbol}")
        self._id_rng = random.Random(f"{seed}:{self.symbol}:ids")
        self._target = levels_per_side
        self._mu_k = math.log(max(1, median_changes))
        self._max_changes = max_changes
        tick = float(Decimal(self.spec.tick_size))
        lots = self.spec.median_level_qty * self.lots_per_unit
        self._mu_q = math.log(max(1.0, lots))
        self._max_q = max(10, int(lots * 1000))
        # Live book: price (ticks) -> qty (lots), plus ascending price lists kept by bisect so a
        # change costs one memmove instead of a sort.
        self._bq: dict[int, int] = {}
        self._aq: dict[int, int] = {}
        self._bpx: list[int] = []
        self._apx: list[int] = []
        mid = max(2, round(self.spec.base_price / tick))
        self._seed_book(mid)
        # History arrays use 32-bit items when ticks and lots fit (halves history memory).
        self._typecode = "i" if max(self._max_q, 4 * mid) < 2**31 else "q"
        self._last_u = 1_000_000_000 + self._id_rng.randrange(1_000_000_000)
        self._last_t = 0
        self._hist: deque[_Rec] = deque(maxlen=max(1, history_events))
        self._taker = TakerFlow(seed, self.symbol, taker_probability, _MIN_LEVELS)
        self._top = self._top_of_book()

    # ------------------------------------------------------------------ construction
    def _draw_qty(self) -> int:
        return min(self._max_q, max(1, int(self._rng.lognormvariate(self._mu_q, 1.0))))

    def _seed_book(self, mid: int) -> None:
        rng = self._rng
        p = mid
        while len(self._bpx) < self._target and p >= 1:
            if p == mid or rng.random() < 0.9:  # ~10% holes
                self._bq[p] = self._draw_qty()
                self._bpx.append(p)
            p -= 1
        self._bpx.reverse()
        p = mid + 1
        while len(self._apx) < self._target:
            if p == mid + 1 or rng.random() < 0.9:
                self._aq[p] = self._draw_qty()
                self._apx.append(p)
            p += 1

    # ------------------------------------------------------------------ properties
    @property
    def last_update_id(self) -> int:
        return self._last_u

    @property
    def oldest_update_id(self) -> int:
        """Oldest id whose book state can still be rebuilt."""
        return self._hist[0].prev if self._hist else self._last_u

    def best_bid_ask(self) -> tuple[int, int]:
        return self._bpx[-1], self._apx[0]

    def _top_of_book(self) -> tuple[int, int, int, int]:
        bb, ba = self._bpx[-1], self._apx[0]
        return bb, self._bq[bb], ba, self._aq[ba]

    def depth_counts(self) -> tuple[int, int]:
        return len(self._bpx), len(self._apx)

    # ------------------------------------------------------------------ stepping
    def _set(self, is_bid: bool, price: int, qty: int) -> None:
        book, prices = (self._bq, self._bpx) if is_bid else (self._aq, self._apx)
        if qty == 0:
            del book[price]
            del prices[bisect_left(prices, price)]
        else:
            if price not in book:
                insort(prices, price)
            book[price] = qty

    def _distance(self, n: int) -> int:
        # Mostly near the touch (geometric, mean 8 levels), sometimes anywhere in the book.
        rng = self._rng
        d = int(rng.expovariate(0.125)) if rng.random() < 0.85 else rng.randrange(n)
        return d if d < n else n - 1

    def step(self, now_ms: int) -> Event:
        """Advance one event and return it with the exact venue payload."""
        rng = self._rng
        k = min(self._max_changes, max(1, int(rng.lognormvariate(self._mu_k, 0.75) + 0.5)))
        touched: set[int] = set()
        bids: list[tuple[int, int, int]] = []
        asks: list[tuple[int, int, int]] = []

        def change(is_bid: bool, price: int, qty: int) -> None:
            old = (self._bq if is_bid else self._aq).get(price, 0)
            self._set(is_bid, price, qty)
            touched.add(price)
            (bids if is_bid else asks).append((price, qty, old))

        # The taker order trades against the book as the previous event left it; the levels it
        # takes are in `touched`, so no later change of this event can alter them again and
        # each traded level's change is exactly its old quantity minus the traded quantity.
        fills: tuple[Fill, ...] = ()
        taker = self._taker.draw(self._bpx, self._bq, self._apx, self._aq)
        if taker is not None:
            buy, takes = taker
            for price, taken in takes:
                change(not buy, price, (self._aq if buy else self._bq)[price] - taken)
            fills = self._taker.fills(buy, takes)

        if rng.random() < 0.3:
            # Touch random walk: take out the best level on one side and, if room is left,
            # add a level inside the spread on the other side.
            up = rng.random() < 0.5
            if len(self._apx if up else self._bpx) > _MIN_LEVELS:
                bb, ba = self._bpx[-1], self._apx[0]
                if (ba if up else bb) not in touched:
                    change(not up, ba if up else bb, 0)
                if ba - bb >= 2:
                    inside = rng.randint(bb + 1, ba - 1)
                    if inside not in touched:  # a level a trade just removed
                        change(up, inside, self._draw_qty())

        attempts = 0
        while len(touched) < k and attempts < 4 * k + 10:
            attempts += 1
            is_bid = rng.random() < 0.5
            prices = self._bpx if is_bid else self._apx
            n = len(prices)
            # Feedback keeps the book near its target size: more deletions when it is large.
            drift = (n - self._target) / self._target
            p_del = min(0.5, max(0.02, 0.15 + 2.0 * drift))
            p_new = min(0.5, max(0.02, 0.15 - 2.0 * drift))
            r = rng.random()
            if r < p_del + (1 - p_del - p_new) or n <= _MIN_LEVELS:
                d = self._distance(n)
                price = prices[n - 1 - d] if is_bid else prices[d]
                if price in touched:
                    continue
                if r < p_del and n > _MIN_LEVELS:
                    change(is_bid, price, 0)
                else:
                    old = (self._bq if is_bid else self._aq)[price]
                    qty = self._draw_qty()
                    change(is_bid, price, qty if qty != old else qty + 1)
            else:
                # New level: from a candidate distance, walk away from the touch to the nearest
                # hole (most near-touch prices are occupied, so a blind pick would usually fail).
                d = self._distance(n)
                book = self._bq if is_bid else self._aq
                if is_bid:
                    price = min(self._bpx[-1] + 1 - d, self._apx[0] - 1)
                    stop = price - 16  # bounded walk keeps step() cheap in full regions
                    while (price in book or price in touched) and price > stop:
                        price -= 1
                    ok = price > stop and price >= 1
                else:
                    price = max(self._apx[0] - 1 + d, self._bpx[-1] + 1)
                    stop = price + 16
                    while (price in book or price in touched) and price < stop:
                        price += 1
                    ok = price < stop
                if ok:
                    change(is_bid, price, self._draw_qty())

        if not touched:  # every event changes at least one level
            price = self._bpx[-1]
            change(True, price, self._bq[price] + 1)

        return self._record(now_ms, bids, asks, fills)

    def _record(
        self,
        now_ms: int,
        bids: list[tuple[int, int, int]],
        asks: list[tuple[int, int, int]],
        fills: tuple[Fill, ...],
    ) -> Event:
        bids.sort(reverse=True)
        asks.sort()
        n_changes = len(bids) + len(asks)
        idr = self._id_rng
        # Binance ids count internal updates, so one event usually spans more ids than levels.
        n_ids = n_changes + idr.randrange(n_changes + 1)
        prev = self._last_u
        first = prev + 1 + (idr.randint(0, 5) if self._futures else 0)
        final = first + n_ids - 1
        t_ms = now_ms - 1 - idr.randrange(3)
        arr = array(self._typecode)
        for triple in bids:
            arr.extend(triple)
        for triple in asks:
            arr.extend(triple)
        rec = _Rec(first, final, prev, now_ms, t_ms, len(bids), arr, fills)
        self._hist.append(rec)
        self._last_u = final
        self._last_t = t_ms
        top = self._top_of_book()
        changed, self._top = top != self._top, top
        return Event(
            self.symbol, first, final, prev, self._payload(rec), now_ms, t_ms, fills, top, changed
        )

    def _payload(self, rec: _Rec) -> dict[str, Any]:
        fp, fq, ch = self.fmt_price, self.fmt_qty, rec.changes
        cut = 3 * rec.n_bids
        b = [[fp(ch[i]), fq(ch[i + 1])] for i in range(0, cut, 3)]
        a = [[fp(ch[i]), fq(ch[i + 1])] for i in range(cut, len(ch), 3)]
        if self._futures:
            return {
                "e": "depthUpdate",
                "E": rec.e_ms,
                "T": rec.t_ms,
                "s": self.symbol,
                "U": rec.first,
                "u": rec.final,
                "pu": rec.prev,
                "b": b,
                "a": a,
            }
        return {
            "e": "depthUpdate",
            "E": rec.e_ms,
            "s": self.symbol,
            "U": rec.first,
            "u": rec.final,
            "b": b,
            "a": a,
        }

    def generated(self) -> list[dict[str, Any]]:
        """Payloads of every event still in history, oldest first."""
        return [self._payload(rec) for rec in self._hist]

    def _trades(self, fills: tuple[Fill, ...], e_ms: int, t_ms: int) -> list[dict[str, Any]]:
        # Trade time `T`: USD-M's matching time (the depth event's T), else the event time.
        t = t_ms if self._futures else e_ms
        return trade_payloads(fills, self.symbol, e_ms, t, self.fmt_price, self.fmt_qty)

    def _aggs(self, fills: tuple[Fill, ...], e_ms: int, t_ms: int) -> list[dict[str, Any]]:
        t = t_ms if self._futures else e_ms
        fp, fq = self.fmt_price, self.fmt_qty
        return agg_trade_payloads(fills, self.symbol, e_ms, t, fp, fq, self._futures)

    def trade_payloads(self, event: Event) -> list[dict[str, Any]]:
        """`<sym>@trade` payloads of an event's taker order, in id order."""
        return self._trades(event.fills, event.e_ms, event.t_ms)

    def agg_trade_payloads(self, event: Event) -> list[dict[str, Any]]:
        """`<sym>@aggTrade` payloads of an event's taker order, one per price level."""
        return self._aggs(event.fills, event.e_ms, event.t_ms)

    def trades(self) -> list[dict[str, Any]]:
        """`trade` payloads of every trade of the events still in history, in id order."""
        return [p for r in self._hist if r.fills for p in self._trades(r.fills, r.e_ms, r.t_ms)]

    def agg_trades(self) -> list[dict[str, Any]]:
        """`aggTrade` payloads of every event still in history, in id order."""
        return [p for r in self._hist if r.fills for p in self._aggs(r.fills, r.e_ms, r.t_ms)]

    # ------------------------------------------------------------------ look-ahead
    def side(self, is_bid: bool) -> tuple[list[int], dict[int, int]]:
        """(ascending prices, price -> qty) of one side of the live book, for reading only."""
        return (self._bpx, self._bq) if is_bid else (self._apx, self._aq)

    @property
    def typical_qty(self) -> int:
        """A typical resting quantity in lots (the lognormal median)."""
        return max(1, int(math.exp(self._mu_q)))

    def fork(self) -> Market:
        """An independent copy of the live book and random streams, without history.

        Its steps are exactly this market's next steps (the model ignores the clock), so the
        simulator can look ahead, e.g. for a price the market will leave alone for a while.
        """
        twin = copy.copy(self)
        twin._bq, twin._aq = dict(self._bq), dict(self._aq)
        twin._bpx, twin._apx = list(self._bpx), list(self._apx)
        twin._rng, twin._id_rng = random.Random(), random.Random()
        twin._rng.setstate(self._rng.getstate())
        twin._id_rng.setstate(self._id_rng.getstate())
        twin._taker = self._taker.fork()
        twin._hist = deque(maxlen=1)
        return twin

    def last_changes(self, is_bid: bool) -> list[int]:
        """Prices (ticks) the latest event changed on one side."""
        rec = self._hist[-1]
        cut = 3 * rec.n_bids
        ch = rec.changes
        return list(ch[0:cut:3]) if is_bid else list(ch[cut::3])

    # ------------------------------------------------------------------ truth
    def _levels(self, book: dict[int, int], best_first_desc: bool, depth: int | None) -> Levels:
        if depth is None or depth >= len(book):
            prices = sorted(book, reverse=best_first_desc)
        elif best_first_desc:
            prices = heapq.nlargest(depth, book)
        else:
            prices = heapq.nsmallest(depth, book)
        fp, fq = self.fmt_price, self.fmt_qty
        return [(fp(p), fq(book[p])) for p in prices]

    def _book_at(self, update_id: int) -> tuple[dict[int, int], dict[int, int], int]:
        """(bids, asks, index of the first undone event) for the state after `update_id`."""
        hist = self._hist
        if update_id == self._last_u:
            return self._bq, self._aq, len(hist)
        if hist and update_id == hist[0].prev:
            stop = 0
        else:
            stop = bisect_left(hist, update_id, key=lambda r: r.final)
            if stop >= len(hist) or hist[stop].final != update_id:
                raise KeyError(
                    f"{self.symbol}: {update_id} is not an event boundary in retained history "
                    f"[{self.oldest_update_id}, {self._last_u}]"
                )
            stop += 1
        bq, aq = dict(self._bq), dict(self._aq)
        for i in range(len(hist) - 1, stop - 1, -1):
            rec = hist[i]
            ch, cut = rec.changes, 3 * rec.n_bids
            for j in range(0, len(ch), 3):
                book = bq if j < cut else aq
                if ch[j + 2]:
                    book[ch[j]] = ch[j + 2]
                else:
                    del book[ch[j]]
        return bq, aq, stop

    def true_book(self, update_id: int, depth: int | None = None) -> tuple[Levels, Levels]:
        """Book exactly after the event whose u == update_id, best level first."""
        bq, aq, _ = self._book_at(update_id)
        if bq is self._bq and depth is not None:
            fp, fq = self.fmt_price, self.fmt_qty
            return (
                [(fp(p), fq(bq[p])) for p in reversed(self._bpx[-depth:])] if depth else [],
                [(fp(p), fq(aq[p])) for p in self._apx[:depth]],
            )
        return self._levels(bq, True, depth), self._levels(aq, False, depth)

    def snapshot(self, limit: int, lag_events: int = 0, now_ms: int = 0) -> dict[str, Any]:
        """REST depth body: the book `lag_events` events ago (clamped to retained history)."""
        lag = min(max(0, lag_events), len(self._hist))
        if lag:
            rec = self._hist[-lag]
            update_id = rec.prev
            prior = len(self._hist) - lag - 1
            t_ms = self._hist[prior].t_ms if prior >= 0 else now_ms - 1
        else:
            update_id, t_ms = self._last_u, self._last_t or now_ms - 1
        bids, asks = self.true_book(update_id, limit)
        body: dict[str, Any] = {"lastUpdateId": update_id}
        if self._futures:
            body["E"] = now_ms
            body["T"] = t_ms
        body["bids"] = [list(level) for level in bids]
        body["asks"] = [list(level) for level in asks]
        return body
