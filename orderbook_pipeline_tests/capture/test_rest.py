"""The request-weight budget that keeps snapshots under the venue's per-minute limit."""

from __future__ import annotations

import asyncio

from orderbook_pipeline.capture.rest import WeightBudget


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_budget_waits_for_the_next_minute_when_full():
    clock = Clock(60.0 * 16_667 + 20)  # 20 s into a minute
    budget = WeightBudget(limit=6000, safety=0.8, clock=clock)
    assert budget.cap == 4800
    for _ in range(19):
        assert budget.delay_for(250) == 0
        budget.used += 250
    assert budget.used == 4750
    assert 40 < budget.delay_for(250) <= 40.1  # until the minute rolls over
    clock.now += 41
    assert budget.delay_for(250) == 0 and budget.used == 0


def test_server_header_counts_other_processes_on_this_ip():
    clock = Clock(60.0 * 100 + 5)
    budget = WeightBudget(limit=1200, safety=1.0, clock=clock)
    budget.observe("1150")
    assert budget.used == 1150
    assert budget.delay_for(50) == 0
    assert budget.delay_for(51) > 0
    budget.observe("not-a-number")
    assert budget.used == 1150


def test_retry_after_blocks_every_request():
    clock = Clock(60.0 * 7)
    budget = WeightBudget(limit=6000, safety=0.8, clock=clock)
    budget.block_for(12)
    assert budget.delay_for(1) == 12
    clock.now += 12.5
    assert budget.delay_for(1) == 0


def test_acquire_sleeps_until_allowed(monkeypatch):
    clock = Clock(60.0 * 3 + 59.5)
    budget = WeightBudget(limit=100, safety=1.0, clock=clock)
    budget.observe("100")
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    asyncio.run(budget.acquire(10))
    assert slept and 0.5 < sum(slept) < 0.6
    assert budget.used == 10
