from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
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


@pytest.fixture
def simulator() -> Iterator[Any]:
    started: list[SimulatorThread] = []

    def start(venue: Venue, symbols: list[str], **kw: Any) -> SimulatorThread:
        sim = SimulatorThread(venue=venue, symbols=symbols, **{**SIM_DEFAULTS, **kw})
        sim.__enter__()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.__exit__(None, None, None)


def _injector(sim: Any, kind: str) -> Any:
    """A fault's own parameters may be called `kind` (malformed): call the method directly."""
    method = getattr(sim.exchange, kind)
    return lambda **kw: sim.call(method, **kw)


def capture(
    sim: Any,
    root: str,
    venue: Venue,
    symbols: list[str],
    duration_s: float = 3.0,
    faults: tuple[tuple[float, str, dict[str, Any]], ...] = (),
    **settings: Any,
) -> dict[str, Any]:
    """Run one burst in this process against `sim`, injecting `faults` at their times."""
    timers = [threading.Timer(at, _injector(sim, kind), (), kw) for at, kind, kw in faults]
    cfg = CaptureSettings(
        venue=venue,
        symbols=symbols,
        duration_s=duration_s,
        depths=settings.pop("depths", (5, 20)),
        data_root=root,
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        **{"stale_after_s": 2.0, "reconnect_base_s": 0.05, **settings},
    )
    for t in timers:
        t.start()
    try:
        metrics = asyncio.run(run_burst(cfg))
    finally:
        for t in timers:
            t.cancel()
    return metrics.summary()
