"""The CLI capture's progress: books in sync, events/s, lag, resyncs, files, every few seconds.

A five-minute `orderbook-pipeline capture` printed nothing until its summary. On a terminal
the line is rewritten in place (stderr); otherwise (a file, a pipe, journald) it is one log
line each time. Only the CLI asks for it: under Dagster a burst's metadata says the same.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from orderbook_pipeline.capture.metrics import BurstMetrics

log = logging.getLogger("orderbook_pipeline.capture")


def progress_line(
    elapsed_s: float,
    books: Mapping[str, bool],
    metrics: BurstMetrics,
    events_since: int,
    lags_us: Sequence[int],
    since_s: float,
    files: int,
) -> str:
    """`elapsed_s`: since the burst began; rates and lag over the last `since_s`."""
    in_sync = sum(books.values())
    rate = events_since / since_s if since_s > 0 else 0.0
    lags = sorted(lags_us)
    lag = f"{lags[int(0.95 * (len(lags) - 1))] / 1000:.1f} ms" if lags else "-"
    resyncs = sum(metrics.resyncs.values())
    return (
        f"capture {elapsed_s:.0f} s: {in_sync}/{len(books)} books in sync, {rate:,.0f} events/s, "
        f"lag p95 {lag}, resyncs {resyncs}, files {files}"
    )


class Progress:
    """Call `tick(now)` often; a line goes out every `interval_s` (0: never)."""

    def __init__(
        self,
        metrics: BurstMetrics,
        books: Callable[[], Mapping[str, bool]],
        files: Callable[[], int],
        interval_s: float,
        start_s: float,
        out: IO[str] | None = None,
    ) -> None:
        self.metrics, self.books, self.files = metrics, books, files
        self.interval_s, self.start_s = interval_s, start_s
        self.out = out if out is not None else sys.stderr
        self.terminal = self.out.isatty()
        self._last_s, self._events, self._lags = start_s, 0, 0
        self._shown = False

    def tick(self, now_s: float) -> None:
        if self.interval_s <= 0 or now_s - self._last_s < self.interval_s:
            return
        m = self.metrics
        line = progress_line(
            now_s - self.start_s,
            self.books(),
            m,
            m.events - self._events,
            m.lag_us[self._lags :],
            now_s - self._last_s,
            self.files(),
        )
        self._last_s, self._events, self._lags = now_s, m.events, len(m.lag_us)
        if self.terminal:
            self.out.write("\r\x1b[2K" + line)  # the line rewritten in place
            self.out.flush()
            self._shown = True
        else:
            log.info("%s", line)

    def close(self) -> None:
        """End the terminal's progress line, so that what follows starts on its own."""
        if self._shown:
            self.out.write("\n")
            self.out.flush()
            self._shown = False
