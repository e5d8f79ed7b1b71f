"""The burst's parts driven through their ports alone (capture/ports.py): snapshot workers, the
periodic clock checks and deep snapshots get a fake REST side, a list writer and a failure
callback, and no CaptureBurst."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from orderbook_pipeline.capture.clock import ClockWatch
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.periodic import clock_checks, deep_interval_s, deep_snapshots
from orderbook_pipeline.capture.ports import BeforeSend
from orderbook_pipeline.capture.rest import RestError, SnapshotResponse
from orderbook_pipeline.capture.snapshots import SnapshotWorkers
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import DiffEvent, Snapshot
from orderbook_pipeline.core.sync import SyncState
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import StorageError
from orderbook_pipeline.venues import BINANCE_SPOT

SYM = "BTCUSDT"
T_MS = 1_763_700_000_000
T_US = T_MS * 1000


@dataclass(eq=False)
class _File:
    partition: Partition
    live: bool = True


@dataclass
class ListWriter:
    """A RecordWriter keeping what it is given; `broken` makes every write fail."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    appended: int = 0
    broken: bool = False

    def write(self, partition: Partition, record: dict[str, Any]) -> None:
        if self.broken:
            raise StorageError("disk full")
        self.records.append((partition.lane, record))

    def handle(self, partition: Partition) -> _File:
        return _File(partition)

    def append(self, f: _File, data: bytes) -> None:
        self.appended += 1


@dataclass
class FakeExchange:
    """SnapshotFetcher and ServerClock: answers from a list (a RestError is raised)."""

    snapshots: list[Snapshot | RestError]
    server_ms: int = T_MS
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def depth(
        self, symbol: str, limit: int, before_send: BeforeSend | None = None
    ) -> SnapshotResponse:
        self.asked.append((symbol, limit))
        if before_send is not None:
            before_send()
        answer = self.snapshots.pop(0)
        if isinstance(answer, RestError):
            raise answer
        return SnapshotResponse(answer, T_US, T_US + 5, 7, limit)

    async def server_time_ms(self, before_send: BeforeSend | None = None) -> int:
        if before_send is not None:
            before_send()
        return self.server_ms


def _snapshot(last_update_id: int) -> Snapshot:
    return Snapshot(last_update_id, [(10.0, 1.0)], [(20.0, 1.0)], [("10", "1")], [("20", "1")])


def _buffering(writer: ListWriter, metrics: BurstMetrics, lanes: tuple[str, ...]) -> SymbolCapture:
    """A symbol with events 95..101 buffered, waiting for its bootstrap snapshot."""
    cap = SymbolCapture(BINANCE_SPOT, SYM, (5,), "b1", writer, metrics, lanes=lanes)
    for first, last in ((95, 100), (101, 101)):
        cap.on_event(
            DiffEvent(
                symbol=SYM,
                event_ms=T_MS,
                first_id=first,
                last_id=last,
                bids=[],
                asks=[],
                ingest_us=T_US,
            )
        )
    assert cap.wants_snapshot
    return cap


async def _for_a_while(work: Coroutine[Any, Any, None], seconds: float) -> None:
    task = asyncio.ensure_future(work)
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _workers(
    exchange: FakeExchange, writer: ListWriter, metrics: BurstMetrics
) -> tuple[SnapshotWorkers, list[BaseException]]:
    failures: list[BaseException] = []
    workers = SnapshotWorkers(exchange, writer, BINANCE_SPOT, "b1", 100, metrics, failures.append)
    return workers, failures


def test_a_worker_syncs_a_book_and_files_its_snapshot() -> None:
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    writer = ListWriter()
    exchange = FakeExchange([_snapshot(100)])
    workers, failures = _workers(exchange, writer, metrics)
    cap = _buffering(writer, metrics, ("l2", "diffs"))

    workers.request(cap)
    workers.request(cap)  # queued once
    asyncio.run(_for_a_while(workers.work(), 0.05))

    assert exchange.asked == [(SYM, 100)]
    assert cap.sync.state is SyncState.SYNCED and not cap.snapshot_queued
    assert [(lane, r["last_update_id"], r["reason"]) for lane, r in writer.records] == [
        ("snapshots", 100, "bootstrap")
    ]
    assert metrics.snapshots == 1 and not failures


def test_a_failed_request_is_counted_and_asked_again() -> None:
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    writer = ListWriter()
    exchange = FakeExchange([RestError(503, "busy"), _snapshot(100)])
    workers, failures = _workers(exchange, writer, metrics)
    cap = _buffering(writer, metrics, ("l2",))

    workers.request(cap)
    asyncio.run(_for_a_while(workers.work(), 1.3))  # the worker pauses FAILED_RETRY_S first

    assert len(exchange.asked) == 2 and cap.sync.state is SyncState.SYNCED
    assert sum(metrics.rest_errors.values()) == 1 and not failures


def test_a_storage_failure_goes_to_the_callback() -> None:
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    writer = ListWriter(broken=True)
    workers, failures = _workers(FakeExchange([_snapshot(100)]), writer, metrics)
    cap = _buffering(writer, metrics, ("l2",))

    workers.request(cap)
    asyncio.run(_for_a_while(workers.work(), 0.05))

    assert [str(exc) for exc in failures] == ["disk full"]
    assert cap.sync.state is SyncState.SYNCED  # the book is fine: only its record was lost


def test_clock_checks_measure_against_the_request_s_midpoint() -> None:
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    exchange = FakeExchange([], server_ms=0)  # the exchange's clock at its epoch
    asyncio.run(_for_a_while(clock_checks(exchange, ClockWatch(metrics), metrics, 60.0), 0.05))
    (offset,) = metrics.clock_offsets_ms
    assert offset < -1e12  # this machine is decades ahead of that exchange


def test_deep_snapshots_are_stretched_to_their_share_of_the_budget() -> None:
    limit = BINANCE_SPOT.deep_snapshot_limit
    assert deep_interval_s(BINANCE_SPOT, limit, 60.0, 0.8, 1) == 60.0
    stretched = deep_interval_s(BINANCE_SPOT, limit, 60.0, 0.8, 10_000)
    assert stretched > 60.0


def test_a_deep_snapshot_storage_failure_goes_to_the_callback() -> None:
    metrics = BurstMetrics("b1", BINANCE_SPOT.name, [SYM])
    writer = ListWriter()
    cap = _buffering(writer, metrics, ("l2", "deep_snapshots"))
    cap.on_snapshot(_snapshot(100), 100, T_US)
    assert cap.sync.state is SyncState.SYNCED
    writer.broken = True
    failures: list[BaseException] = []
    deep = deep_snapshots(
        [cap],
        FakeExchange([_snapshot(101)] * 50),
        metrics,
        venue=BINANCE_SPOT,
        limit=100,
        configured_s=0.01,
        weight_safety=0.8,
        on_storage_failure=failures.append,
    )
    asyncio.run(_for_a_while(deep, 0.4))  # first due after the first poll
    assert failures and {str(exc) for exc in failures} == {"disk full"}
    assert metrics.deep_snapshots["match"] == len(failures)  # compared, then not written
