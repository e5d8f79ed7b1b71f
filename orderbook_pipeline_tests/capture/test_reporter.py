"""The bronze reporter: the capture hands files over without waiting, the listener hears of
them coalesced per lane and hour, and a slow or failing listener costs the capture nothing."""

from __future__ import annotations

import threading
import time

from orderbook_pipeline.capture.reporter import HOUR_CLOSE_GRACE_S, Batch, BronzeReporter
from orderbook_pipeline.storage.layout import HOUR_US, Partition

H = 1_767_225_600_000_000  # an hour start (µs)


def files(lane: str, symbol: str, n: int, hour: int = H, burst: str = "b") -> list[str]:
    part = Partition(lane, "binance-spot", symbol, hour, 10 if lane == "l2" else None)
    return [part.bronze_file(burst, i) for i in range(n)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_files_are_coalesced_per_lane_and_hour_at_most_once_an_interval() -> None:
    heard: list[list[Batch]] = []
    clock = Clock(H / 1e6 + 600)
    reporter = BronzeReporter(heard.append, interval_s=120, clock=clock, tick_s=3600)
    reporter.published(files("l2", "BTCUSDT", 3) + files("l2", "ETHUSDT", 2), {"events": 5})
    reporter.published(files("diffs", "BTCUSDT", 1), {"events": 6})
    assert reporter._due(everything=False) == []  # the first report waits an interval too
    clock.now += 120
    reporter._send(reporter._due(everything=False))  # a tick of the thread
    (batches,) = heard
    by_lane = {b.lane: b for b in batches}
    assert sorted(by_lane) == ["diffs", "l2"]
    assert len(by_lane["l2"].files) == 5 and by_lane["l2"].symbols == {"BTCUSDT", "ETHUSDT"}
    assert by_lane["diffs"].metrics == {"events": 6} and not by_lane["l2"].final
    # More files within the interval wait; after it they go, as one batch.
    reporter.published(files("l2", "BTCUSDT", 4, burst="c"), {"events": 9})
    clock.now += 60
    assert reporter._due(everything=False) == []
    clock.now += 61
    (late,) = reporter._due(everything=False)
    assert (late.lane, len(late.files)) == ("l2", 4)


def test_an_hour_that_is_over_is_reported_at_once_and_close_reports_the_rest() -> None:
    heard: list[Batch] = []
    clock = Clock(H / 1e6 + 3479)
    reporter = BronzeReporter(heard.extend, interval_s=120, clock=clock, tick_s=3600)
    reporter.published(files("l2", "BTCUSDT", 1), {})
    clock.now += 120
    reporter._send(reporter._due(everything=False))
    reporter.published(files("l2", "BTCUSDT", 1, burst="x"), {})  # the hour's last file
    clock.now = (H + HOUR_US) / 1e6 + HOUR_CLOSE_GRACE_S  # 6 s after the first report: due
    (closing,) = reporter._due(everything=False)
    assert closing.hour_start_us == H and closing.final
    reporter.published(files("l2", "BTCUSDT", 1, hour=H + HOUR_US), {})
    reporter.close()  # the burst ended: the next hour's file is reported as it stands
    assert [(b.hour_start_us, b.final) for b in heard[-1:]] == [(H + HOUR_US, True)]
    assert reporter.reports == 2


def test_a_slow_listener_never_blocks_the_capture_and_a_failing_one_is_counted() -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow(batches: list[Batch]) -> None:
        calls.append(len(batches))
        release.wait(10)
        raise RuntimeError("database is locked")

    with BronzeReporter(slow, interval_s=0.0, tick_s=0.01) as reporter:
        reporter.published(files("l2", "BTCUSDT", 1), {})
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls, "the thread reports on its own"
        # The listener is stuck: handing over more files still takes no time.
        started = time.perf_counter()
        for i in range(1000):
            reporter.published(files("diffs", "BTCUSDT", 1, burst=f"b{i}"), {"events": i})
        assert time.perf_counter() - started < 0.5
        release.set()
    assert reporter.failures >= 1
    # Everything handed over reached the listener (as few calls, however many files).
    assert sum(calls) >= 2 and len(calls) <= 4
