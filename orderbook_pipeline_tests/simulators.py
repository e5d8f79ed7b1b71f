"""Bundled exchanges started on demand by a test, and all stopped after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.venues import Venue

# Small, fast markets: 50 events/s per symbol, 400-level books. The exchange keeps enough history
# for every record of a test burst to be checked against its true book.
SIM_DEFAULTS: dict[str, Any] = {
    "interval_ms": 20,
    "levels_per_side": 400,
    "seed": 7,
    "history_events": 20_000,
}


@contextmanager
def simulators(**defaults: Any) -> Iterator[Callable[..., SimulatorThread]]:
    """`start(venue, symbols, **kw)` starts an exchange (`kw` over `defaults`); every one started
    is stopped when the block ends."""
    started: list[SimulatorThread] = []

    def start(venue: Venue, symbols: Sequence[str], **kw: Any) -> SimulatorThread:
        sim = SimulatorThread(venue=venue, symbols=list(symbols), **{**defaults, **kw})
        sim.__enter__()
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.__exit__(None, None, None)
