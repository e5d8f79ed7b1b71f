"""Taker orders of the market model: which resting levels a step's taker order consumes, how the
fills split into trades, and the trade / aggTrade payloads.

A taker order is drawn before the step's other changes and trades against the best level(s) of
the opposite side as they stood after the previous event; the market then reduces (or removes)
those levels as part of the same event, so the depth stream and the trades always agree. The
draws use their own random stream (seeded by seed and symbol only), so trades are identical on
every venue, like the book.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A taker order fully consumes the best level this often (when the book can spare the level);
# it then sweeps into the second level this often.
_P_CONSUME = 0.25
_P_SWEEP = 0.5


@dataclass(frozen=True, slots=True)
class Fill:
    """One aggTrade: trades first_id..last_id, all at one price, against one side."""

    agg_id: int
    first_id: int
    price: int  # ticks
    qtys: tuple[int, ...]  # lots, one per trade
    buyer_maker: bool  # True: a taker sell hit a bid

    @property
    def last_id(self) -> int:
        return self.first_id + len(self.qtys) - 1

    @property
    def qty(self) -> int:
        return sum(self.qtys)


class TakerFlow:
    """Seeded source of taker orders and of consecutive trade and aggregate ids for one symbol."""

    def __init__(self, seed: int, symbol: str, probability: float, min_levels: int) -> None:
        self._rng = random.Random(f"{seed}:{symbol}:taker")
        self.probability = probability
        self._min_levels = min_levels
        self._next_trade = 100_000_000 + self._rng.randrange(900_000_000)
        self._next_agg = 10_000_000 + self._rng.randrange(90_000_000)

    def fork(self) -> TakerFlow:
        """An independent copy whose draws and ids continue exactly as this one's would."""
        twin = TakerFlow.__new__(TakerFlow)
        twin.__dict__.update(self.__dict__)
        twin._rng = random.Random()
        twin._rng.setstate(self._rng.getstate())
        return twin

    def draw(
        self,
        bid_prices: list[int],
        bids: dict[int, int],
        ask_prices: list[int],
        asks: dict[int, int],
    ) -> tuple[bool, list[tuple[int, int]]] | None:
        """(is taker buy, [(price, lots taken)] best level first), or None for no taker order.

        The order never removes a side below the market's minimum number of levels.
        """
        rng = self._rng
        if rng.random() >= self.probability:
            return None
        buy = rng.random() < 0.5
        prices, book = (ask_prices, asks) if buy else (bid_prices, bids)
        best = prices[0] if buy else prices[-1]
        spare = len(prices) - self._min_levels  # levels the order may remove entirely
        qty = book[best]
        if spare > 0 and rng.random() < _P_CONSUME:
            takes = [(best, qty)]
            if spare > 1 and rng.random() < _P_SWEEP:
                second = prices[1] if buy else prices[-2]
                if book[second] > 1:  # leave the second level standing
                    takes.append((second, rng.randint(1, book[second] - 1)))
            return buy, takes
        if qty < 2:
            return None  # a one-lot level can only be taken whole, and it may not be
        # Mostly small relative to the level: most trades nibble at the touch.
        return buy, [(best, max(1, min(qty - 1, int(qty * rng.random() ** 2))))]

    def fills(self, buy: bool, takes: list[tuple[int, int]]) -> tuple[Fill, ...]:
        """Split each level's taken quantity into 1-3 trades and number them."""
        rng = self._rng
        out = []
        for price, taken in takes:
            n = min(taken, rng.choice((1, 1, 2, 3)))
            cuts = sorted(rng.sample(range(1, taken), n - 1)) if n > 1 else []
            bounds = [0, *cuts, taken]
            qtys = tuple(b - a for a, b in itertools.pairwise(bounds))
            out.append(Fill(self._next_agg, self._next_trade, price, qtys, not buy))
            self._next_agg += 1
            self._next_trade += n
        return tuple(out)


Formatter = Callable[[int], str]


def trade_payloads(
    fills: tuple[Fill, ...], symbol: str, e_ms: int, t_ms: int, fp: Formatter, fq: Formatter
) -> list[dict[str, Any]]:
    """`<sym>@trade` payloads (spot, Binance.US) of one event's fills, in id order."""
    out = []
    for fill in fills:
        px = fp(fill.price)
        for i, q in enumerate(fill.qtys):
            out.append(
                {
                    "e": "trade",
                    "E": e_ms,
                    "s": symbol,
                    "t": fill.first_id + i,
                    "p": px,
                    "q": fq(q),
                    "T": t_ms,
                    "m": fill.buyer_maker,
                    "M": True,
                }
            )
    return out


def agg_trade_payloads(
    fills: tuple[Fill, ...],
    symbol: str,
    e_ms: int,
    t_ms: int,
    fp: Formatter,
    fq: Formatter,
    futures: bool,
) -> list[dict[str, Any]]:
    """`<sym>@aggTrade` payloads of one event's fills; USD-M has no "M" field."""
    out = []
    for fill in fills:
        payload: dict[str, Any] = {
            "e": "aggTrade",
            "E": e_ms,
            "s": symbol,
            "a": fill.agg_id,
            "p": fp(fill.price),
            "q": fq(fill.qty),
            "f": fill.first_id,
            "l": fill.last_id,
            "T": t_ms,
            "m": fill.buyer_maker,
        }
        if not futures:
            payload["M"] = True
        out.append(payload)
    return out
