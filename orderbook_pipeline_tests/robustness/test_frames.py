"""Hostile frames on the depth stream: a frame beyond the receive limit, a huge junk frame."""

from __future__ import annotations

from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.capture.conftest import capture
from orderbook_pipeline_tests.capture.truth import verify_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTHS = (5, 20)


def test_a_20_mib_frame_costs_a_reconnect_never_a_wrong_book(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    faults = ((1.0, "oversized", {"symbol": "BTCUSDT", "size_bytes": 20 * 2**20}),)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=5.0, faults=faults)
    assert summary["reconnects"] >= 1  # the receive limit (16 MiB) closed the connection
    assert summary["empty_symbols"] == []
    # Every record exact, every loss across the reconnect flagged (verify_capture's rules).
    verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS, 0.5)


def test_a_5_mib_junk_frame_is_refused_and_counted(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    faults = ((1.0, "oversized", {"symbol": "ETHUSDT", "size_bytes": 5 * 2**20}),)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=4.0, faults=faults)
    assert sum(summary["bad_frames"].values()) == 1
    assert summary["reconnects"] == 0
    verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
