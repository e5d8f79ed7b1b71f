"""Fault arming and truth queries of the bundled exchange (the part of SimulatedExchange that
tests and the /sim endpoints call), kept apart from the serving code in server.py.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from orderbook_pipeline.simulator.faults import (
    BodyKind,
    Endpoint,
    EventFault,
    FaultKind,
    FaultPlan,
    MalformedKind,
)
from orderbook_pipeline.simulator.market import Market
from orderbook_pipeline.venues import Venue

Levels = list[tuple[str, str]]


class ExchangeControl:
    """Mixin of SimulatedExchange; the attributes below are set by its constructor."""

    venue: Venue
    faults: FaultPlan
    markets: dict[str, Market]
    # Every phantom level sent by corrupt_level: symbol, update_id, side, price, qty (strings
    # as streamed; for distance 0 the quantity the stream claimed for the best level).
    corruptions: list[dict[str, Any]]
    _sent: dict[str, deque[int]]
    _sent_trades: dict[str, deque[int]]
    clock_offset_ms: int  # added to serverTime
    event_offset_ms: int  # added to event times (E)

    def known_symbol(self, symbol: str) -> str:
        """The symbol as the exchange names it (upper case); ValueError if it has no market."""
        if symbol.upper() not in self.markets:
            raise ValueError(f"unknown symbol {symbol!r}")
        return symbol.upper()

    # ================================================================== faults
    def inject(self, kind: FaultKind | str, **params: Any) -> None:
        """Arm a fault by name; `variant` is the malformed kind (see faults.FAULT_PARAMS)."""
        kind = FaultKind(kind)
        if kind in (FaultKind.MALFORMED, FaultKind.BAD_BODY) and "variant" in params:
            params["kind"] = params.pop("variant")
        getattr(self, kind.value)(**params)

    def drop(self, symbol: str, count: int = 1) -> None:
        self.faults.arm_event(self.known_symbol(symbol), EventFault.DROP, count)

    def duplicate(self, symbol: str, count: int = 1) -> None:
        self.faults.arm_event(self.known_symbol(symbol), EventFault.DUPLICATE, count)

    def reorder(self, symbol: str) -> None:
        self.faults.arm_event(self.known_symbol(symbol), EventFault.REORDER, 1)

    def malformed(
        self, symbol: str, kind: MalformedKind | str = MalformedKind.INVALID_JSON, count: int = 1
    ) -> None:
        self.faults.arm_malformed(self.known_symbol(symbol), MalformedKind(kind), count)

    def rate_limit(
        self,
        count: int = 1,
        retry_after_s: int = 1,
        status: int = 429,
        endpoint: Endpoint | str = Endpoint.ANY,
    ) -> None:
        """The next `count` REST requests (to `endpoint`, or any) answer 429 or 418."""
        self.faults.arm_rest(status, retry_after_s, count, False, Endpoint(endpoint))

    def bad_body(
        self,
        endpoint: Endpoint | str = Endpoint.ANY,
        kind: BodyKind | str = BodyKind.HTML,
        count: int = 1,
    ) -> None:
        """The next `count` answers of `endpoint` have status 200 and a body that is not the
        endpoint's (see BodyKind)."""
        self.faults.arm_rest(200, None, count, False, Endpoint(endpoint), BodyKind(kind))

    def oversized(self, symbol: str, size_bytes: int = 20 * 2**20, count: int = 1) -> None:
        """A frame of `size_bytes` (one JSON object of padding) on the symbol's depth stream
        before its next event."""
        self.faults.arm_oversized(self.known_symbol(symbol), size_bytes, count)

    def clock_step(self, server_ms: int = 0, event_ms: int = 0) -> None:
        """From now on the REST clock (serverTime) is `server_ms` further off, and event times
        `event_ms` (either may be negative: a step back)."""
        self.clock_offset_ms += server_ms
        self.event_offset_ms += event_ms

    def http_error(self, count: int = 1, status: int = 503) -> None:
        self.faults.arm_rest(status, None, count, depth_only=True)

    def stale_snapshot(self, symbol: str, lag_events: int = 3, count: int = 1) -> None:
        self.faults.arm_stale(self.known_symbol(symbol), lag_events, count)

    def silent(self, duration_s: float) -> None:
        self.faults.arm_silent(duration_s)

    def drop_trade(self, symbol: str, count: int = 1) -> None:
        """The next `count` trades of the symbol, and the aggTrades containing them, are not sent
        on the trade/aggTrade streams (ids jump); the market and the depth stream are unaffected.
        """
        self.faults.arm_trade_drop(self.known_symbol(symbol), count)

    def corrupt_level(
        self, symbol: str, distance: int = 50, side: str = "bid", horizon_events: int = 600
    ) -> None:
        """The next depth event sent for the symbol carries a phantom level: a price in a hole
        of the true book about `distance` levels from the touch on `side` (distance 0: a wrong
        quantity for the best level), chosen so the market's next `horizon_events` events leave
        it alone when any nearby hole allows (see phantom.py). The true book, snapshots and
        other streams are unaffected; what was sent is appended to `corruptions`.
        """
        self.faults.arm_corrupt(self.known_symbol(symbol), distance, side, horizon_events)

    # ================================================================== observability
    def sent_log(self, symbol: str) -> list[int]:
        """`u` of every depth event dispatched to subscribers, in order, duplicates included."""
        return list(self._sent[self.known_symbol(symbol)])

    def generated(self, symbol: str) -> list[dict[str, Any]]:
        return self.markets[self.known_symbol(symbol)].generated()

    def true_book(
        self, symbol: str, update_id: int, depth: int | None = None
    ) -> tuple[Levels, Levels]:
        return self.markets[self.known_symbol(symbol)].true_book(update_id, depth)

    def trades(self, symbol: str) -> list[dict[str, Any]]:
        """`trade` payloads of every trade still in history, in order, dropped ones included."""
        return self.markets[self.known_symbol(symbol)].trades()

    def agg_trades(self, symbol: str) -> list[dict[str, Any]]:
        """`aggTrade` payloads of every aggTrade still in history, dropped ones included."""
        return self.markets[self.known_symbol(symbol)].agg_trades()

    def sent_trade_ids(self, symbol: str) -> list[int]:
        """Ids of the trades sent while anyone subscribed to the symbol's trade or aggTrade
        stream: on the trade stream where the venue has one, else within sent aggTrades."""
        return list(self._sent_trades[self.known_symbol(symbol)])

    def book_ticker_at(self, symbol: str, update_id: int) -> tuple[str, str, str, str]:
        """(bid price, bid qty, ask price, ask qty) of the true book after event `update_id`."""
        bids, asks = self.true_book(symbol, update_id, 1)
        return bids[0][0], bids[0][1], asks[0][0], asks[0][1]
