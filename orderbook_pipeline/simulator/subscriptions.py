"""Who listens to which stream: the bundled exchange's subscription registry.

Diff-depth subscribers are kept per symbol (every tick looks them up), the other streams per
symbol and stream, with a symbol absent while nobody subscribes to its other streams, so the tick
loop can skip building their frames with one dict lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Generic, TypeVar

from orderbook_pipeline.simulator.streams import Kind, StreamKey, parse_stream, served_on
from orderbook_pipeline.venues import Venue

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Hashable)


class Subscriptions(Generic[C]):
    """Clients (any hashable connection object) and the names they subscribed each stream by."""

    def __init__(self, venue: Venue, symbols: list[str]) -> None:
        self.venue = venue
        self._lower = {s.lower(): s for s in symbols}
        self._keys: dict[str, StreamKey | None] = {}  # lower-case name -> stream, parsed once
        self.depth: dict[str, dict[C, set[str]]] = {s: {} for s in symbols}
        self.extra: dict[str, dict[StreamKey, dict[C, set[str]]]] = {}

    def key(self, name: str) -> StreamKey | None:
        lower = name.lower()
        if lower not in self._keys:
            self._keys[lower] = parse_stream(self.venue, lower, self._lower)
        return self._keys[lower]

    def _subs_of(self, key: StreamKey, create: bool) -> dict[C, set[str]] | None:
        if key.kind is Kind.DEPTH:
            return self.depth[key.symbol]
        per_symbol = self.extra.get(key.symbol)
        if per_symbol is None:
            if not create:
                return None
            per_symbol = self.extra[key.symbol] = {}
        subs = per_symbol.get(key)
        if subs is None and create:
            subs = per_symbol[key] = {}
        return subs

    def add(self, client: C, name: str, scope: str) -> None:
        """Subscribe; a name this exchange never feeds, or one not served under the client's
        path prefix, is accepted and stays silent (as Binance does)."""
        key = self.key(name)
        if key is None:
            return
        if not served_on(self.venue, key.kind, scope):
            log.debug("stream %s is not served under %r: accepted, silent", name, scope)
            return
        subs = self._subs_of(key, create=True)
        assert subs is not None
        subs.setdefault(client, set()).add(name)

    def remove(self, client: C, name: str) -> None:
        key = self.key(name)
        subs = self._subs_of(key, create=False) if key is not None else None
        names = subs.get(client) if subs is not None else None
        if names is None or key is None or subs is None:
            return
        names.discard(name)
        if names:
            return
        del subs[client]
        if not subs and key.kind is not Kind.DEPTH:
            per_symbol = self.extra[key.symbol]
            del per_symbol[key]
            if not per_symbol:
                del self.extra[key.symbol]
