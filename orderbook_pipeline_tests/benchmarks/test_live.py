"""The live capture benchmark on a tiny setting (5 symbols, 8 s): figures well formed, events
captured, and the client-drop accounting (exchange sent log vs bronze diff lane) consistent.
No timing or CPU assertions: the machines running the suite are shared and noisy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import live

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

FIGURE_KEYS = {"name": str, "value": float, "unit": str, "target": str, "met": bool, "notes": str}


def test_count_drops_splits_sent_events_by_the_clients_span() -> None:
    sent = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 19]  # a duplicate dispatch counts once
    received = {(11, 11), (12, 12), (15, 15), (18, 18)}  # 13-14 and 16-17 lost, 19 in flight
    d = live.count_drops(sent, received)
    assert (d.sent, d.received, d.in_span, d.missing) == (10, 4, 8, 4)
    assert (d.before, d.after, d.unknown) == (1, 1, 0)
    assert (d.runs, d.longest) == (2, 2)
    assert live.count_drops([1, 2], set()).after == 2


def test_raw_profile_counts_own_and_inclusive_samples() -> None:
    raw = (
        "<module> (/w/orderbook_pipeline/cli.py:1);outer (/w/orderbook_pipeline/a.py:5);"
        "loads (/v/lib/python3.11/site-packages/orjson/x.py:9) 30\n"
        "<module> (/w/orderbook_pipeline/cli.py:1);outer (/w/orderbook_pipeline/a.py:5) 10\n"
        "<module> (/w/orderbook_pipeline/cli.py:1);rec (/w/orderbook_pipeline/a.py:20);"
        "rec (/w/orderbook_pipeline/a.py:20) 5\n"
    )
    p = live.parse_raw_profile(raw.replace("/w/", f"{live.ROOT}/"), top=3)
    assert p.samples == 45
    assert p.own == [
        ("loads (orjson/x.py:9)", 30),
        ("outer (orderbook_pipeline/a.py:5)", 10),
        ("rec (orderbook_pipeline/a.py:20)", 5),
    ]
    assert p.packages == [("orjson", 30), ("orderbook_pipeline/a", 15)]
    # Inclusive time lists the project's functions only, and a recursive function is on the
    # stack once per sample, not once per frame.
    assert p.inclusive == [
        ("<module> (orderbook_pipeline/cli.py:1)", 45),
        ("outer (orderbook_pipeline/a.py:5)", 40),
        ("rec (orderbook_pipeline/a.py:20)", 5),
    ]


def test_symbol_names_are_distinct_and_plausible() -> None:
    names = live.symbol_names(200)
    assert len(set(names)) == 200
    assert names[:2] == ["BTCUSDT", "ETHUSDT"]
    assert all(n.endswith("USDT") and n.isalnum() and n.isupper() for n in names)


def test_live_figures_on_a_tiny_burst() -> None:
    runs: list[live.LiveRun] = []
    figures = live.figures(quick=True, symbols=5, duration_s=8.0, run_out=runs)

    # The four targets, then context; the CPU target is the book lanes' (the default lanes).
    names = {f["name"] for f in figures}
    cpu = next(f for f in figures if f["name"] == "live capture CPU, 5 symbols, lanes l2,diffs")
    assert cpu["target"] == "<= 10"
    assert live.cpu_target_percent("all") == 20 and live.cpu_target_percent("l2") == 10
    assert {
        "live capture CPU, 5 symbols, lanes l2,diffs",
        "live ingest lag p95",
        "live client drops",
        "live capture peak RSS",
    } <= names
    assert len(names) == len(figures)
    for f in figures:
        assert set(f) == set(FIGURE_KEYS), f
        for key, kind in FIGURE_KEYS.items():
            assert isinstance(f[key], kind), (key, f)
        assert f["name"] and f["unit"] and f["target"] and f["notes"]
    # Every figure had data to work from (a NaN would mean a window without samples).
    assert not any(math.isnan(f["value"]) for f in figures), figures

    (run,) = runs
    summary = run.summary
    assert summary["events"] > 0 and summary["records"] > 0
    assert run.capture and run.simulator and run.machine
    assert set(run.drops) == set(run.symbols) == set(run.bronze)

    for symbol, d in run.drops.items():
        assert d.received > 0, symbol
        # Every sent event is before, inside or after the client's span, exactly once.
        assert d.before + d.in_span + d.after == d.sent, (symbol, d)
        # What the client kept is what was sent in its span less what it lost: nothing
        # appears in the diff lane that the exchange did not send.
        assert d.unknown == 0, (symbol, d)
        assert d.received == d.in_span - d.missing, (symbol, d)
        assert d.before == 0, (symbol, d)  # the client hears every event from its first

    # The diff lane holds every distinct event the capture counted, once.
    lane = sum(d.received for d in run.drops.values())
    assert lane == summary["events"] - summary["duplicates"]
    drops = next(f for f in figures if f["name"] == "live client drops")
    assert drops["value"] == run.client_drops
    if summary["reconnects"] == 0:  # no fault was injected: nothing may be lost
        assert run.client_drops == 0
