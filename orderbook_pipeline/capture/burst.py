"""One bounded capture burst: connect, sync every symbol's book, write the bronze lanes, stop.

Everything runs on one asyncio loop. Frames are handled synchronously as they arrive (parse,
sync, record, Avro), snapshots are fetched by a few workers under the venue's weight budget, and
a maintenance tick flushes Avro blocks so that a killed process loses at most about a second.

This module is the burst's lifecycle (start-up, tasks, shutdown, publishing); frames are routed
in routing.py, snapshots fetched in snapshots.py, the periodic REST work done in periodic.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from orderbook_pipeline.capture.clock import ClockWatch
from orderbook_pipeline.capture.connection import StreamConnection
from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.periodic import clock_checks, deep_snapshots
from orderbook_pipeline.capture.progress import Progress
from orderbook_pipeline.capture.rest import RestClient, RestError, WeightBudget
from orderbook_pipeline.capture.routing import FrameRouter
from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.capture.snapshots import SnapshotWorkers
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.core.events import Scales
from orderbook_pipeline.core.implementation import PYTHON, CompiledCoreMissing, Core
from orderbook_pipeline.core.implementation import choose as choose_core
from orderbook_pipeline.core.sync import SyncState
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.salvage import recover_temporaries
from orderbook_pipeline.storage.store import StorageError

log = logging.getLogger("orderbook_pipeline.capture")

MAINTAIN_EVERY_S = 0.1


class CaptureError(Exception):
    """The burst could not run or could not keep its data safe (message says why)."""


# Told about files as they become final, with the burst's metrics so far (orchestration reports
# them as they land rather than when the burst ends).
PublishedHandler = Callable[[list[str], BurstMetrics], None]


class CaptureBurst:
    def __init__(
        self, settings: CaptureSettings, on_published: PublishedHandler | None = None
    ) -> None:
        self.settings = settings
        self.on_published = on_published
        self._reported = 0
        self.venue = settings.venue
        self.metrics = BurstMetrics(settings.burst_id, settings.venue.name, settings.symbols)
        self.symbols: dict[str, SymbolCapture] = {}
        self.scales: dict[str, Scales] = {}
        self.stop = asyncio.Event()
        self.clock = ClockWatch(self.metrics)
        self._attempts: deque[float] = deque()  # connection attempts, shared (see connection.py)
        self.fatal: BaseException | None = None
        self.core: Core | None = None  # chosen at the start of run()

    # --- lifecycle ----------------------------------------------------------------------
    async def run(self) -> BurstMetrics:
        s = self.settings
        try:
            self.core, line = choose_core(s.core)
        except CompiledCoreMissing as exc:
            raise CaptureError(str(exc)) from exc
        log.info("%s", line)
        # The duration counts from here: a start-up that waits (a rate limit on exchangeInfo, a
        # slow salvage) is part of the burst, not added to it.
        deadline = asyncio.get_running_loop().call_later(s.duration_s, self.stop.set)
        store = open_store(s.data_root, s3_endpoint_url=s.s3_endpoint_url)
        report = await asyncio.to_thread(recover_temporaries, store)
        self.metrics.salvaged_files = report.files_recovered
        self.metrics.salvaged_records = report.records_recovered
        if report.recovered_paths and self.on_published is not None:
            # A killed burst's files, final now: reported like this burst's own, so that the
            # hours they belong to are refreshed again (they may be closed already).
            self.on_published(list(report.recovered_paths), self.metrics)
        self.writer = BronzeWriter(
            store,
            s.burst_id,
            max_file_bytes=s.max_file_bytes,
            max_file_seconds=s.max_file_seconds,
            flush_interval_s=s.flush_interval_s,
        )
        self.progress = Progress(
            self.metrics,
            lambda: {n: c.sync.state is SyncState.SYNCED for n, c in self.symbols.items()},
            lambda: len(self.writer.published),
            s.progress_interval_s,
            time.monotonic(),
        )
        try:
            timeout = httpx.Timeout(10.0, connect=5.0)
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
                budget = WeightBudget(self.venue.weight_limit_1m, s.weight_safety)
                self.rest = RestClient(self.venue, s.rest_base, http, self.metrics, budget)
                self._wire()
                if await self._until_stopped(self._start_symbols(), "start-up"):
                    await self._capture()
        finally:
            deadline.cancel()
            self.progress.close()
            self._name_empty_symbols()
            self.metrics.unsynced_at_end = sum(c.unsynced for c in self.symbols.values())
            for cap in self.symbols.values():  # records still waiting for a book: written now
                try:
                    cap.finish()
                except StorageError as exc:  # close still publishes what is complete
                    self.fatal = self.fatal or exc
            try:
                # Blocks the loop for at most the writer's upload grace (S3), once nothing else
                # runs on it: the connections and tasks are done.
                self.writer.close()
            except StorageError as exc:
                self.fatal = self.fatal or exc
            self.metrics.files_left_for_salvage = self.writer.left_for_salvage
            self.metrics.upload_retries = self.writer.upload_retries
            self.metrics.published = list(self.writer.published)
            self.metrics.files_published = len(self.metrics.published)
            self._report_published()
        if self.fatal is not None:
            raise CaptureError(str(self.fatal)) from self.fatal
        return self.metrics

    def _wire(self) -> None:
        """The burst's parts, given what each uses: snapshot workers (REST, writer) and the
        frame router (the books, and where to ask for their snapshots)."""
        s = self.settings
        assert s.snapshot_limit is not None  # settings fill it in
        self.snapshots = SnapshotWorkers(
            self.rest,
            self.writer,
            self.venue,
            s.burst_id,
            s.snapshot_limit,
            self.metrics,
            self._fail,
        )
        self.router = FrameRouter(
            self.symbols,
            self.metrics,
            self.venue.has_prev_update_id,
            self.snapshots.request,
            self._fail,
            core=self.core or PYTHON,
        )

    async def _until_stopped(self, work: Coroutine[Any, Any, None], what: str) -> bool:
        """Run `work` unless the burst stops first (its end, SIGTERM): then cancel it, wherever
        it waits (a rate limit's Retry-After, a retry's back-off), and return False."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                log.warning("the burst ended during %s, before capturing anything", what)
        if task.cancelled():
            return False
        task.result()  # its error, if it failed
        return True

    def _name_empty_symbols(self) -> None:
        empty = [
            symbol
            for symbol in self.settings.symbols
            if symbol not in self.symbols or self.symbols[symbol].received == 0
        ]
        self.metrics.empty_symbols = empty
        if empty:
            log.error(
                "captured nothing of %d of %d requested symbols: %s",
                len(empty),
                len(self.settings.symbols),
                ", ".join(empty[:20]) + (" ..." if len(empty) > 20 else ""),
            )

    async def _start_symbols(self) -> None:
        s = self.settings
        try:
            self.scales, unknown = await self.rest.scales(s.symbols)
        except RestError as exc:
            raise CaptureError(f"exchangeInfo failed: {exc}") from exc
        for symbol in unknown:
            log.error("%s: unknown symbol on %s, skipped", symbol, self.venue.name)
        self.metrics.unknown_symbols = unknown
        if not self.scales:
            raise CaptureError(f"none of the symbols {s.symbols} exists on {self.venue.name}")
        lanes = s.lanes or ()
        for symbol in self.scales:
            cap = SymbolCapture(
                self.venue,
                symbol,
                s.depths,
                s.burst_id,
                self.writer,
                self.metrics,
                lanes=lanes,
                partial_levels=s.partial_depth_levels,
                band_pcts=s.band_pcts,
                band_interval_s=s.band_interval_s,
                core=self.core or PYTHON,
            )
            self.symbols[symbol] = cap
            self.router.route_depth(self.venue.depth_stream(symbol), cap)
        for name, (symbol, lane, levels) in s.lane_streams(list(self.scales)).items():
            self.router.route_lane(name, self.symbols[symbol], lane, levels)

    async def _capture(self) -> None:
        s = self.settings
        connections = [
            self._connection(i, prefix, names)
            for i, (prefix, names) in enumerate(s.connection_groups(list(self.symbols)))
        ]
        tasks = [asyncio.create_task(c.run(self.stop), name=c.name) for c in connections]
        tasks += [
            asyncio.create_task(self.snapshots.work(), name=f"snapshots#{i}")
            for i in range(s.snapshot_concurrency)
        ]
        tasks.append(asyncio.create_task(self._maintain(), name="maintain"))
        checks = clock_checks(self.rest, self.clock, self.metrics, s.clock_check_interval_s)
        tasks.append(asyncio.create_task(checks, name="clock"))
        if "deep_snapshots" in (s.lanes or ()):
            assert s.deep_snapshot_limit is not None
            deep = deep_snapshots(
                list(self.symbols.values()),
                self.rest,
                self.metrics,
                venue=self.venue,
                limit=s.deep_snapshot_limit,
                configured_s=s.deep_snapshot_interval_s,
                weight_safety=s.weight_safety,
                on_storage_failure=self._fail,
            )
            tasks.append(asyncio.create_task(deep, name="deep_snapshots"))
        await self.stop.wait()  # the burst's end (set by run's deadline), a signal, a failure
        for task in tasks[len(connections) :]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("task %s failed: %r", task.get_name(), result)
                self.fatal = self.fatal or result

    def _connection(self, i: int, prefix: str | None, names: list[str]) -> StreamConnection:
        """The depth streams' connections (prefix None), and the other stream lanes' apart from
        them (their frames take another path; USD-M serves aggTrade on another URL path)."""
        s, router = self.settings, self.router
        stale_after_s, on_frame, on_reconnect = (
            s.stale_after_s,
            router.on_frame,
            router.on_reconnect,
        )
        name = f"{self.venue.name}#{i}"
        if prefix is not None:
            on_frame, on_reconnect = router.on_lane_frame, router.on_lane_reconnect
            name = f"{self.venue.name}{prefix}/lanes#{i}"
            # Trades alone can be quiet for minutes on a thin market: no early stale verdict.
            lanes = {router.lane_of(n) for n in names}
            if not lanes & {"partial_depth", "book_ticker"}:
                stale_after_s = max(stale_after_s, 300.0)
        return StreamConnection(
            name=name,
            url=self.venue.combined_stream_url(names, s.ws_url, prefix),
            streams=names,
            on_frame=on_frame,
            on_reconnect=on_reconnect,
            stale_after_s=stale_after_s,
            backoff_base_s=s.reconnect_base_s,
            backoff_cap_s=s.reconnect_cap_s,
            attempts=self._attempts,
        )

    def request_stop(self) -> None:
        self.stop.set()

    def _fail(self, exc: BaseException) -> None:
        """Storage failed: stop at once so that what is already complete gets published."""
        if self.fatal is None:
            log.error("stopping the burst: %s", exc)
        else:  # records still arriving while the burst stops
            log.debug("while stopping: %s", exc)
        self.fatal = self.fatal or exc
        self.stop.set()

    # --- maintenance ----------------------------------------------------------------------
    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(MAINTAIN_EVERY_S)
            try:
                self.writer.maintain()
            except StorageError as exc:
                self._fail(exc)
                return
            self.clock.check_local()
            self._report_published()
            self.progress.tick(time.monotonic())

    def _report_published(self) -> None:
        new = self.writer.published[self._reported :]
        if new and self.on_published is not None:
            self._reported += len(new)
            self.on_published(list(new), self.metrics)


async def run_burst(
    settings: CaptureSettings,
    handle_signals: bool = False,
    on_published: PublishedHandler | None = None,
) -> BurstMetrics:
    """Run one burst; with handle_signals, SIGTERM/SIGINT end it early with every file final
    (the handlers the process had before come back afterwards: under Dagster, its own)."""
    burst = CaptureBurst(settings, on_published)
    if not handle_signals:
        return await burst.run()
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in previous:
            loop.add_signal_handler(sig, burst.request_stop)
    except (RuntimeError, ValueError):  # not the main thread: signals stay with the caller
        return await burst.run()
    try:
        return await burst.run()
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
