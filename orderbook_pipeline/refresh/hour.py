"""An hour's refresh over every configured stream, in one process: what a refresh run does.

Streams are refreshed one after the other (each stream's work is columnar already, and the
capture needs the other core); the mart database is opened once, on first use, for the whole
hour. The result says per stream what was written, judged and what failed; assets/refresh.py
turns it into Dagster events.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import duckdb

from orderbook_pipeline.marts.partition import ensure_tables
from orderbook_pipeline.refresh.compact import compact_streams
from orderbook_pipeline.refresh.scope import HourScope
from orderbook_pipeline.refresh.stream import Selection, StreamReport, judge_stream
from orderbook_pipeline.storage.store import Store

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass
class HourReport:
    scope: HourScope
    streams: list[StreamReport] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the refresh
    cpu_seconds: float = 0.0  # process CPU time it took
    stopped: bool = False  # asked to stop before every stream was refreshed

    def failed_streams(self) -> list[StreamReport]:
        return [s for s in self.streams if s.errors]


class _Marts:
    """The mart connection, opened (and its tables ensured) on first use only."""

    def __init__(self, stack: contextlib.ExitStack, connect: Connect, time_basis: str) -> None:
        self.stack, self.connect, self.time_basis = stack, connect, time_basis
        self.conn: duckdb.DuckDBPyConnection | None = None
        self.failure: Exception | None = None

    def __call__(self) -> duckdb.DuckDBPyConnection:
        if self.failure is not None:  # opening waits up to ~100 s on a lock: fail once only
            raise self.failure
        if self.conn is None:
            try:
                conn = self.stack.enter_context(self.connect())
                ensure_tables(conn, self.time_basis)
            except Exception as exc:
                self.failure = exc
                raise
            self.conn = conn
        return self.conn


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (in the main thread; elsewhere
    it is never set and the process's handlers stay), the previous handlers restored after."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def mart_session(connect: Connect | None, time_basis: str) -> Iterator[_Marts | None]:
    """One lazily opened mart connection for a whole refresh run (several hours)."""
    with contextlib.ExitStack() as stack:
        yield _Marts(stack, connect, time_basis) if connect is not None else None


def refresh_hour(
    store: Store,
    scope: HourScope,
    selection: Selection,
    marts: Callable[[], duckdb.DuckDBPyConnection] | None,
    time_basis: str,
    coverage_threshold: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> HourReport:
    """Every configured stream's share of the hour: each venue's silver a lane at a time for
    all its streams (refresh/compact.py), then each stream's verdicts and marts
    (refresh/stream.py). `should_stop` is asked between lanes and streams (a stopped refresh
    leaves every directory consistent: the next one carries on)."""
    started, cpu = time.monotonic(), time.process_time()
    report = HourReport(scope)
    for venue in scope.venues:
        streams = [StreamReport(venue.venue, symbol) for symbol in venue.symbols]
        if not compact_streams(store, scope, venue, streams, selection, should_stop):
            report.stopped = True
            break
        for stream in streams:
            if should_stop():
                report.stopped = True
                break
            judge_stream(
                store, scope, venue, stream, selection, coverage_threshold, marts, time_basis
            )
            report.streams.append(stream)
        if report.stopped:
            break
    report.seconds = time.monotonic() - started
    report.cpu_seconds = time.process_time() - cpu
    return report
