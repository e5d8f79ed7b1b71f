"""Clock sanity: a far-off exchange clock, event times that step back, and this machine's
clock stepping are logged and counted, and the offset is measured again during the burst."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest

from orderbook_pipeline.capture.burst import CaptureBurst
from orderbook_pipeline.capture.clock import ClockWatch
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.capture.conftest import capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HOUR_MS = 3_600_000


def test_an_exchange_clock_an_hour_behind_is_a_counted_warning(simulator, tmp_path, caplog):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    sim.inject("clock_step", server_ms=-HOUR_MS)
    summary = capture(
        sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=3.0, clock_check_interval_s=1.0
    )
    clock = summary["clock"]
    assert clock["samples"] >= 2  # measured again during the burst, not only at its start
    assert clock["offset_ms"] == pytest.approx(-HOUR_MS, abs=1000)
    assert clock["offsets_beyond_threshold"] == clock["samples"]
    warned = re.findall(r"the exchange's clock is (-?\d+) ms", caplog.text)
    assert warned and all(int(ms) == pytest.approx(-HOUR_MS, abs=1000) for ms in warned)


def test_event_times_stepping_back_two_hours_are_counted_once_per_symbol(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    step = threading.Timer(1.5, sim.inject, ("clock_step",), {"event_ms": -2 * HOUR_MS})
    step.start()
    try:
        summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=3.0)
    finally:
        step.cancel()
    assert summary["clock"]["event_times_backwards"] == len(SYMBOLS)
    assert summary["resyncs"] == 0  # the ids still chain: the book is right, its clock is not


def test_a_local_clock_step_is_counted_and_remeasured_at_once():
    metrics = BurstMetrics("b", "binance-spot", ["BTCUSDT"])
    now = [1000.0]
    watch = ClockWatch(metrics, wall=lambda: now[0], monotonic=lambda: 5.0)
    assert not watch.check_local()
    now[0] += 0.5  # NTP slewing: within the threshold
    assert not watch.check_local()
    now[0] -= 3600.0
    assert watch.check_local() and metrics.local_clock_steps == 1
    assert not watch.check_local()  # the new clock is the reference from now on

    async def next_check() -> float:
        started = time.monotonic()
        await watch.wait_for_check(60.0)  # a step is pending: no wait for the interval
        return time.monotonic() - started

    assert asyncio.run(next_check()) < 1.0


def test_a_burst_remeasures_the_offset_when_this_machine_s_clock_steps(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    settings = CaptureSettings(
        venue=BINANCE_SPOT,
        symbols=["BTCUSDT"],
        duration_s=3.0,
        data_root=str(tmp_path),
        ws_url=sim.ws_url,
        rest_url=sim.rest_url,
        lanes=("l2", "diffs"),
        clock_check_interval_s=600.0,  # only the start's measurement, unless the clock steps
    )
    burst = CaptureBurst(settings)
    stepped = threading.Event()

    def wall() -> float:  # this machine's clock jumps an hour ahead after 1.5 s
        return time.time() + (3600.0 if stepped.is_set() else 0.0)

    burst.clock._wall = wall
    timer = threading.Timer(1.5, stepped.set)
    timer.start()
    try:
        summary = asyncio.run(burst.run()).summary()
    finally:
        timer.cancel()
    assert summary["clock"]["local_steps"] == 1
    assert summary["clock"]["samples"] == 2
