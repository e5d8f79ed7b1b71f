"""A burst ends on time, and on SIGTERM, whatever it is waiting for (issue 11, defect 1)."""

from __future__ import annotations

import time

import pytest

from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.capture.conftest import capture
from orderbook_pipeline_tests.cli_capture import run_cli, temporaries

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def test_a_ban_on_exchange_info_does_not_outlast_the_burst(simulator, tmp_path):
    """418 with Retry-After 120 s on the start-up's exchangeInfo: a 3 s burst ends after 3 s,
    not after the ban (before the fix: 123 s), and says it captured nothing."""
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    sim.inject("rate_limit", status=418, retry_after_s=120, endpoint="exchange_info")
    started = time.monotonic()
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=3.0)
    took = time.monotonic() - started
    assert took < 8.0, f"the burst took {took:.1f} s"
    assert summary["rate_limited"] == 1
    assert summary["empty_symbols"] == SYMBOLS
    assert summary["events"] == 0


# Each fault keeps the burst waiting somewhere: the start-up's exchangeInfo (a ban, a retried
# malformed answer), the snapshots (a ban, retried malformed answers), the connections (a
# silent exchange: stale connections replaced with back-off).
WAITING_STATES = {
    "exchange_info_banned": [("rate_limit", {"status": 418, "retry_after_s": 120})],
    "exchange_info_malformed": [
        ("bad_body", {"endpoint": "exchange_info", "variant": "html", "count": 1000})
    ],
    "snapshot_banned": [("rate_limit", {"status": 418, "retry_after_s": 120, "endpoint": "depth"})],
    "snapshot_malformed": [
        ("bad_body", {"endpoint": "depth", "variant": "truncated", "count": 1000})
    ],
    "exchange_silent": [("silent", {"duration_s": 120.0})],
}


@pytest.mark.parametrize("state", sorted(WAITING_STATES))
def test_sigterm_ends_the_burst_in_every_waiting_state(simulator, tmp_path, state):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    for kind, params in WAITING_STATES[state]:
        sim.inject(kind, **params)
    run = run_cli(
        sim,
        tmp_path,
        ["--symbols", ",".join(SYMBOLS), "--duration", "120", "--stale-after", "1"],
        sigterm_after_s=4.0,
    )
    assert run.seconds < 5.0, f"{state}: {run.seconds:.1f} s after SIGTERM\n{run.stderr}"
    assert run.summary is not None, run.stderr
    assert not temporaries(tmp_path), "every file is final"
    if state.startswith("exchange_info"):  # nothing could start: said so, exit 3
        assert run.code == 3, run.stderr
        assert run.summary["empty_symbols"] == SYMBOLS
        assert "captured nothing of 2 requested symbol(s)" in run.stderr
    else:  # the depth events were captured (diff lane) while the books waited
        assert run.code in (0, 3), run.stderr
    if "malformed" in state:
        assert run.summary["rest_errors"]["malformed"] >= 1
    if "banned" in state:
        assert run.summary["rate_limited"] >= 1
