from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from orderbook_pipeline.capture.burst import run_burst
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.venues import Venue
from orderbook_pipeline_tests.simulators import SIM_DEFAULTS, simulators

__all__ = ["SIM_DEFAULTS", "capture", "simulator"]


@pytest.fixture
def simulator() -> Iterator[Any]:
    """`simulator(venue, symbols, **kw)`: a bundled exchange with SIM_DEFAULTS (`kw` over them)."""
    with simulators(**SIM_DEFAULTS) as start:
        yield start


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
