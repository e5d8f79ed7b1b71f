"""Clock sanity of a burst: the exchange's clock against ours, our own clock's steps, and event
times that go backwards.

Records land in the hour their clock says (event time for the book lanes, receive time for
snapshots), so a wrong clock files data in the wrong hour without any error. None of this can be
corrected safely after the fact, so it is measured, logged and counted in the summary's `clock`:
- the offset (exchange minus local, NTP-style) is measured every clock_check_interval_s, and at
  once after a local step; an offset beyond OFFSET_THRESHOLD_MS is a warning;
- a local step is a jump of the wall clock against the monotonic clock (NTP correcting a bad
  clock, a suspended VM resuming, someone setting the date);
- an event time more than BACKWARDS_TOLERANCE_MS before the newest of its symbol is counted:
  Binance's event times are not strictly ordered across matching engines by a few ms, never by
  seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orderbook_pipeline.capture.metrics import BurstMetrics

log = logging.getLogger("orderbook_pipeline.capture")

OFFSET_THRESHOLD_MS = 1000.0
STEP_THRESHOLD_S = 1.0
BACKWARDS_TOLERANCE_MS = 1000
_LOG_FIRST = 5


class ClockWatch:
    def __init__(
        self,
        metrics: BurstMetrics,
        offset_threshold_ms: float = OFFSET_THRESHOLD_MS,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.offset_threshold_ms = offset_threshold_ms
        self._wall, self._monotonic = wall, monotonic
        self._base = wall() - monotonic()
        self._recheck = asyncio.Event()

    def on_offset(self, offset_ms: float, rtt_ms: float) -> None:
        m = self.metrics
        m.clock_offsets_ms.append(offset_ms)
        m.clock_rtts_ms.append(rtt_ms)
        if abs(offset_ms) > self.offset_threshold_ms:
            m.clock_offsets_beyond_threshold += 1
            if m.clock_offsets_beyond_threshold <= _LOG_FIRST:
                log.warning(
                    "the exchange's clock is %+.0f ms from this machine's (threshold %.0f ms): "
                    "records are filed by their own clocks, check NTP here",
                    offset_ms,
                    self.offset_threshold_ms,
                )

    def check_local(self) -> bool:
        """Compare the wall clock with the monotonic one; True (and a re-measure of the
        offset) when it stepped."""
        drift = self._wall() - self._monotonic()
        step = drift - self._base
        if abs(step) <= STEP_THRESHOLD_S:
            return False
        self._base = drift
        self.metrics.local_clock_steps += 1
        log.warning("this machine's clock stepped by %+.3f s during the burst", step)
        self._recheck.set()
        return True

    async def wait_for_check(self, interval_s: float) -> None:
        """Until the next offset measurement is due: the interval, or a local step."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._recheck.wait(), timeout=interval_s)
        self._recheck.clear()


def event_time_went_back(metrics: BurstMetrics, symbol: str, newest_ms: int, event_ms: int) -> None:
    """Count (and log the first few of) an event time far before its symbol's newest."""
    metrics.event_times_backwards += 1
    if metrics.event_times_backwards <= _LOG_FIRST:
        log.warning(
            "%s: event time went back %.3f s (to %d from %d): the exchange's clock stepped",
            symbol,
            (newest_ms - event_ms) / 1000,
            event_ms,
            newest_ms,
        )
