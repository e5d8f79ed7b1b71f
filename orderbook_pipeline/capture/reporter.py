"""Tells a slow listener (Dagster's event log) about published bronze files without ever making
the capture wait for it.

The capture's event loop calls `published()` as files become final: it only adds them to a
small table under a lock, O(files). A thread of its own hands them on, coalesced: at most one
batch per (lane, hour) every `interval_s` (the first one too), one as soon as an hour is over
(its files are all final then), and whatever is left at `close()`. The table holds one entry per lane and hour, so
it stays small however slow the listener is; a listener that fails is logged and counted, and
the capture goes on (the refresh reads the lake itself, these reports are for people).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orderbook_pipeline.storage.layout import HOUR_US, partition_of

log = logging.getLogger("orderbook_pipeline.capture")

# An hour's last files are published when the stream rolls to the next hour or at the latest
# after the writer's flush tick: this long after the hour they are all final.
HOUR_CLOSE_GRACE_S = 5.0


@dataclass
class Batch:
    """Files of one lane and hour published since the last report of them."""

    lane: str
    venue: str
    hour_start_us: int
    files: list[str] = field(default_factory=list)
    symbols: set[str] = field(default_factory=set)
    metrics: Mapping[str, Any] = field(default_factory=dict)  # the burst's, when last added
    final: bool = False  # the hour is over: no more files of it from this burst


Listener = Callable[[list[Batch]], None]


class BronzeReporter:
    def __init__(
        self,
        listener: Listener,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
    ) -> None:
        self.listener, self.interval_s, self.clock, self.tick_s = (
            listener,
            interval_s,
            clock,
            tick_s,
        )
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, int], Batch] = {}
        self._last_sent: dict[tuple[str, str, int], float] = {}
        # The first report of a lane and hour waits an interval too: a burst's first files
        # land within a minute, and one report then and another soon after say nothing more.
        self._started = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bronze-reporter", daemon=True)
        self.reports = 0  # batches handed to the listener
        self.failures = 0  # listener calls that raised

    # -- the capture's side: never blocks on the listener -----------------------------------
    def published(self, paths: Iterable[str], metrics: Mapping[str, Any]) -> None:
        with self._lock:
            for rel in paths:
                part = partition_of(rel)
                if part is None:
                    continue
                key = (part.lane, part.venue, part.hour_start_us)
                batch = self._pending.get(key)
                if batch is None:
                    batch = self._pending[key] = Batch(part.lane, part.venue, part.hour_start_us)
                batch.files.append(rel)
                batch.symbols.add(part.symbol)
                batch.metrics = metrics

    # -- the thread's side ------------------------------------------------------------------
    def __enter__(self) -> BronzeReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and report everything still pending (the burst has ended)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._send(self._due(everything=True))

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._send(self._due(everything=False))

    def _due(self, everything: bool) -> list[Batch]:
        now = self.clock()
        with self._lock:
            keys = [
                key
                for key, batch in self._pending.items()
                if everything
                or now >= (batch.hour_start_us + HOUR_US) / 1e6 + HOUR_CLOSE_GRACE_S
                or now - self._last_sent.get(key, self._started) >= self.interval_s
            ]
            due = [self._pending.pop(key) for key in keys]
            for key, batch in zip(keys, due, strict=True):
                self._last_sent[key] = now
                batch.final = everything or now >= (key[2] + HOUR_US) / 1e6 + HOUR_CLOSE_GRACE_S
        return due

    def _send(self, batches: list[Batch]) -> None:
        if not batches:
            return
        try:
            self.listener(batches)
            self.reports += len(batches)
        except Exception:  # a slow or broken instance must never stop the capture
            self.failures += 1
            log.exception("could not report %d bronze batch(es) to the orchestrator", len(batches))
