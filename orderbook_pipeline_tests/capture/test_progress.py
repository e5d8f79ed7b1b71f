"""The CLI capture's progress line: in place on a terminal, a log line otherwise."""

from __future__ import annotations

import io
import logging

import pytest

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.progress import Progress, progress_line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _metrics() -> BurstMetrics:
    m = BurstMetrics("b", "binance-spot", ["BTCUSDT", "ETHUSDT"])
    m.resyncs["gap"] = 2
    return m


def test_the_line_names_books_rate_lag_resyncs_and_files() -> None:
    line = progress_line(
        65.4,
        {"BTCUSDT": True, "ETHUSDT": False},
        _metrics(),
        3000,
        list(range(0, 100_000, 1000)),
        30.0,
        12,
    )
    assert line == (
        "capture 65 s: 1/2 books in sync, 100 events/s, lag p95 94.0 ms, resyncs 2, files 12"
    )
    assert "lag p95 -," in progress_line(1.0, {}, _metrics(), 0, [], 1.0, 0)


def test_on_a_terminal_the_line_is_rewritten_in_place_then_ended() -> None:
    m, out = _metrics(), _Terminal()
    progress = Progress(m, lambda: {"BTCUSDT": True}, lambda: 3, 10.0, start_s=100.0, out=out)
    progress.tick(105.0)  # before the interval: nothing
    assert out.getvalue() == ""
    m.events, m.lag_us.extend([2000, 4000])
    progress.tick(110.0)
    m.events += 50
    progress.tick(121.0)
    progress.close()
    first, second = out.getvalue().split("\r\x1b[2K")[1:]
    assert first.startswith("capture 10 s: 1/1 books in sync, 0 events/s, lag p95 2.0 ms")
    assert second == "capture 21 s: 1/1 books in sync, 5 events/s, lag p95 -, resyncs 2, files 3\n"


def test_elsewhere_each_line_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    progress = Progress(_metrics(), lambda: {"BTCUSDT": False}, lambda: 0, 5.0, 0.0, out=out)
    with caplog.at_level(logging.INFO, logger="orderbook_pipeline.capture"):
        progress.tick(5.0)
        progress.tick(10.0)
        progress.close()
    assert out.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert [x.split(":")[0] for x in lines] == ["capture 5 s", "capture 10 s"]


def test_an_interval_of_zero_prints_nothing() -> None:
    out = _Terminal()
    progress = Progress(_metrics(), dict, lambda: 0, 0.0, 0.0, out=out)
    progress.tick(1e6)
    progress.close()
    assert out.getvalue() == ""
