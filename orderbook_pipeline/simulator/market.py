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

import hashlib
import heapq
import math
import random
from array import array
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orderbook_pipeline.venues import Venue

# Spot and Binance.US print every price and quantity with 8 decimals; USD-M prints exactly the
# tick/step decimals. venues.py has no field for this, so it is derived from the sync rule.
_KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")
_MIN_LEVELS = 10  # never delete below this many levels a side


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    step_size: str
    price_decimals: int
    qty_decimals: int
    base_price: float
    # Typical resting quantity of one level, in base units (lognormal median).
    median_level_qty: float


def _stable_int(text: str) -> int:
    # Python's hash() is salted per process; the market must be reproducible across runs.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _decimals(size: str) -> int:
    exponent = Decimal(size).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _split_assets(symbol: str) -> tuple[str, str]:
    for quote in _KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3] or symbol, symbol[-3:]


def symbol_spec(symbol: str) -> SymbolSpec:
    """Exchange facts of a simulated symbol, derived deterministically from its name."""
    symbol = symbol.upper()
    if symbol == "BTCUSDT":
        price, tick, step = 65000.0, "0.01", "0.00001"
    elif symbol == "ETHUSDT":
        price, tick, step = 3000.0, "0.01", "0.0001"
    else:
        h = _stable_int(symbol)
        price = 1.0 + (h % 999_000) / 1000.0
        tick = "0.0001" if (h >> 32) & 1 else "0.001"
        step = "0.01"
    base, quote = _split_assets(symbol)
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        tick_size=tick,
        step_size=step,
        price_decimals=_decimals(tick),
        qty_decimals=_decimals(step),
        base_price=price,
        median_level_qty=2000.0 / price,  # ~2000 quote units a level
    )


def make_formatter(unit_decimals: int, out_decimals: int) -> Any:
    """Integer units of 10**-unit_decimals -> fixed-point string with out_decimals."""
    scale = 10**unit_decimals
    pad = "0" * (out_decimals - unit_decimals)
    if unit_decimals == 0:
        return (lambda v: f"{v}.{pad}") if pad else str
    return lambda v: f"{v // scale}.{v % scale:0{unit_decimals}d}{pad}"


def venue_decimals(venue: Venue, spec: SymbolSpec) -> tuple[int, int]:
    """(price decimals, qty decimals) the venue prints for this symbol."""
    if venue.text_decimals is None:
        return spec.price_decimals, spec.qty_decimals
    return max(venue.text_decimals, spec.price_decimals), max(
        venue.text_decimals, spec.qty_decimals
    )


@dataclass(frozen=True, slots=True)
class Event:
    symbol: str
    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu on USD-M; for spot the previous event's u
    payload: dict[str, Any]


@dataclass(slots=True)
class _Rec:
    """Compact history entry: changes as [price, new_qty, old_qty] triples, bids first."""

    first: int
    final: int
    prev: int
    e_ms: int
    t_ms: int
    n_bids: int
    changes: array


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

        if rng.random() < 0.3:
            # Touch random walk: take out the best level on one side and, if room is left,
            # add a level inside the spread on the other side.
            up = rng.random() < 0.5
            if len(self._apx if up else self._bpx) > _MIN_LEVELS:
                bb, ba = self._bpx[-1], self._apx[0]
                change(not up, ba if up else bb, 0)
                if ba - bb >= 2:
                    change(up, rng.randint(bb + 1, ba - 1), self._draw_qty())

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

        return self._record(now_ms, bids, asks)

    def _record(
        self, now_ms: int, bids: list[tuple[int, int, int]], asks: list[tuple[int, int, int]]
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
        rec = _Rec(first, final, prev, now_ms, t_ms, len(bids), arr)
        self._hist.append(rec)
        self._last_u = final
        self._last_t = t_ms
        return Event(self.symbol, first, final, prev, self._payload(rec))

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
