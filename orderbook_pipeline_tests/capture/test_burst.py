"""Capture bursts against the bundled exchange, clean and under every injected fault: every L2
record equals the true book, unflagged records continue the chain, losses are flagged, at least
99% of in-sync events become records, and the diff lane holds each event once, exactly as sent."""

from __future__ import annotations

from typing import Any

import pytest

from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_US, BINANCE_USDM

from .conftest import capture
from .truth import verify_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTHS = (5, 20)


def _diff_ids_equal_sent(sim: Any, seen: Any, symbol: str) -> None:
    ids = sorted(d["last_update_id"] for d in seen.diffs[symbol])
    sent = {u for u in sim.sent_log(symbol) if ids[0] <= u <= ids[-1]}
    assert set(ids) == sent, "the diff lane must hold every event received, once"


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM, BINANCE_US], ids=lambda v: v.name)
def test_clean_capture_is_exact_and_complete(simulator, tmp_path, venue, core):
    sim = simulator(venue, SYMBOLS)
    summary = capture(sim, str(tmp_path), venue, SYMBOLS, depths=DEPTHS, core=core.name)
    seen = verify_capture(sim, open_store(str(tmp_path)), venue, SYMBOLS, DEPTHS)
    assert summary["resyncs"] == 0 and summary["reconnects"] == 0
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 0}
    assert all(not r["recovered"] for recs in seen.records.values() for r in recs)
    for symbol in SYMBOLS:
        _diff_ids_equal_sent(sim, seen, symbol)
    assert summary["records"] == sum(len(r) for r in seen.records.values())
    assert summary["levels_filled"] == {"5": 1.0, "20": 1.0}
    assert summary["snapshots"] == len(SYMBOLS)


LOSS_FAULTS = [
    ("drop", {"symbol": "BTCUSDT", "count": 3}, "gap"),
    ("reorder", {"symbol": "BTCUSDT"}, "gap"),
    ("malformed", {"symbol": "BTCUSDT", "kind": "invalid_json"}, "gap"),
    ("malformed", {"symbol": "BTCUSDT", "kind": "wrong_types"}, "wrong_types"),
    ("malformed", {"symbol": "BTCUSDT", "kind": "nan_qty"}, "bad_number"),
    ("malformed", {"symbol": "BTCUSDT", "kind": "negative_qty"}, "bad_number"),
]


@pytest.mark.parametrize(
    ("kind", "kw", "cause"),
    LOSS_FAULTS,
    ids=[f"{k}-{kw.get('kind', '')}" for k, kw, _ in LOSS_FAULTS],
)
def test_lost_event_is_flagged_and_the_book_rebuilt(simulator, tmp_path, kind, kw, cause, core):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    faults = ((1.5, kind, kw),)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, faults=faults, core=core.name)
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert seen.gaps_flagged["BTCUSDT"] == 1, "the loss must be flagged exactly once"
    assert seen.gaps_flagged["ETHUSDT"] == 0, "a loss on one symbol never resets another"
    assert summary["resyncs_by_cause"].get(cause, 0) >= 1
    if kind == "malformed":
        assert sum(summary["bad_frames"].values()) >= 1
    if kind in ("drop", "reorder"):
        _diff_ids_equal_sent(sim, seen, "BTCUSDT")


@pytest.mark.parametrize("venue", [BINANCE_USDM, BINANCE_US], ids=lambda v: v.name)
def test_loss_on_other_venues(simulator, tmp_path, venue):
    sim = simulator(venue, SYMBOLS)
    capture(sim, str(tmp_path), venue, SYMBOLS, faults=((1.5, "drop", {"symbol": "ETHUSDT"}),))
    seen = verify_capture(sim, open_store(str(tmp_path)), venue, SYMBOLS, DEPTHS)
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 1}


def test_duplicates_are_dropped_without_resync(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    faults = ((1.2, "duplicate", {"symbol": "BTCUSDT", "count": 3}),)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, faults=faults)
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert summary["duplicates"] >= 3 and summary["resyncs"] == 0
    assert seen.gaps_flagged["BTCUSDT"] == 0
    _diff_ids_equal_sent(sim, seen, "BTCUSDT")


def test_abrupt_disconnect_reconnects_and_flags(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(
        sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=4.0, faults=((1.5, "disconnect", {}),)
    )
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert summary["reconnects"] >= 1
    # Events sent while the connection was down are lost; verify_capture proved every such loss
    # is flagged. Each flag is one resync blamed on the reconnect, at most one per symbol.
    assert all(n <= 1 for n in seen.gaps_flagged.values())
    assert summary["resyncs_by_cause"].get("reconnect", 0) == sum(seen.gaps_flagged.values())


def test_server_shutdown_is_bridged_without_a_resync(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(
        sim,
        str(tmp_path),
        BINANCE_SPOT,
        SYMBOLS,
        duration_s=4.0,
        faults=((1.5, "server_close", {"grace_s": 1.0}),),
    )
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert summary["reconnects"] == 1
    assert summary["resyncs"] == 0, "make-before-break: the new connection continues the chain"
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 0}
    assert summary["duplicates"] > 0, "both connections delivered the overlap; repeats dropped"
    for symbol in SYMBOLS:
        _diff_ids_equal_sent(sim, seen, symbol)


def test_silent_stream_is_replaced(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(
        sim,
        str(tmp_path),
        BINANCE_SPOT,
        SYMBOLS,
        duration_s=4.5,
        faults=((1.2, "silent", {"duration_s": 2.0}),),
        stale_after_s=0.8,
    )
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert summary["reconnects"] >= 1
    assert summary["resyncs_by_cause"].get("stale", 0) == 2
    assert seen.gaps_flagged == {"BTCUSDT": 1, "ETHUSDT": 1}


@pytest.mark.parametrize(
    ("kind", "kw", "key"),
    [
        ("rate_limit", {"count": 2, "retry_after_s": 1}, "rate_limited"),
        ("rate_limit", {"count": 1, "retry_after_s": 1, "status": 418}, "rate_limited"),
        ("http_error", {"count": 2, "status": 503}, "503"),
        ("stale_snapshot", {"symbol": "BTCUSDT", "lag_events": 3}, None),
        ("stale_snapshot", {"symbol": "BTCUSDT", "lag_events": 60}, "snapshots_too_old"),
    ],
    ids=["429", "418", "503", "stale-snapshot", "snapshot-older-than-buffer"],
)
def test_rest_faults_delay_but_never_corrupt(simulator, tmp_path, kind, kw, key):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    sim.inject(kind, **kw)  # before the burst: hits exchangeInfo or the bootstrap snapshots
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=4.0)
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 0}
    if key == "rate_limited":
        assert summary["rate_limited"] >= 1
    elif key == "503":
        assert summary["rest_errors"].get("503", 0) == 2
    elif key == "snapshots_too_old":
        assert summary["snapshots_too_old"] >= 1


def test_unknown_symbol_is_skipped_and_the_rest_captured(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, [*SYMBOLS, "NOPEUSDT"])
    assert summary["unknown_symbols"] == ["NOPEUSDT"]
    verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)


def test_streams_split_over_several_connections(simulator, tmp_path):
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    sim = simulator(BINANCE_USDM, symbols)
    summary = capture(
        sim,
        str(tmp_path),
        BINANCE_USDM,
        symbols,
        max_streams_per_connection=1,
        faults=((1.5, "drop", {"symbol": "SOLUSDT"}),),
    )
    seen = verify_capture(sim, open_store(str(tmp_path)), BINANCE_USDM, symbols, DEPTHS)
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 0, "SOLUSDT": 1}
    assert summary["reconnects"] == 0


def test_server_pings_are_answered(simulator, tmp_path):
    # The exchange pings every 0.1 s and drops a client that has not answered within 0.3 s.
    sim = simulator(BINANCE_SPOT, SYMBOLS, ping_interval_s=0.1, pong_timeout_s=0.3)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, duration_s=2.5)
    assert summary["reconnects"] == 0 and summary["resyncs"] == 0
    verify_capture(sim, open_store(str(tmp_path)), BINANCE_SPOT, SYMBOLS, DEPTHS)


def test_events_covered_by_a_snapshot_are_not_counted_as_lost(simulator, tmp_path):
    """A healthy burst: what the books received before their snapshots is covered by them,
    nothing is left unsynced, and every distinct event is applied, stale or covered."""
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, depths=DEPTHS)
    assert summary["resyncs"] == 0 and summary["unsynced_at_end"] == 0
    assert summary["covered_by_snapshots"] > 0  # events arrive before the first snapshot
    assert "drop_rate_ppm" not in summary


def test_a_book_still_rebuilding_at_the_end_names_its_unsynced_events(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    faults = (
        (1.2, "http_error", {"count": 10_000, "status": 503}),  # no snapshot from here on
        (1.5, "drop", {"symbol": "BTCUSDT", "count": 2}),
    )
    summary = capture(sim, str(tmp_path), BINANCE_SPOT, SYMBOLS, faults=faults)
    assert summary["resyncs_by_cause"] == {"gap": 1}
    # BTCUSDT received ~1.5 s of events at 10/s after its gap, and no snapshot covered them.
    assert summary["unsynced_at_end"] >= 5
    assert summary["rest_errors"].get("503", 0) >= 1
