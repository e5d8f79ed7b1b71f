"""Rendering a live run as the markdown table, timeline and profile."""

from __future__ import annotations

import json
from collections.abc import Sequence

from benchmarks.live.results import LiveRun, _fmt, _pct
from benchmarks.live.sampling import cpu_percent


def render(run: LiveRun) -> str:
    out = [
        "| figure | value | unit | target | met | notes |",
        "|---|---:|---|---|---|---|",
    ]
    for f in run.figures():
        met = "MET" if f["met"] else "NOT MET"
        out.append(
            f"| {f['name']} | {f['value']} | {f['unit']} | {f['target']} | {met} | {f['notes']} |"
        )
    out += [
        "",
        "Timeline: CPU % of one core (capture, exchange, all other processes on the machine), "
        "capture peak RSS, books in sync, diff-lane events and lag p95, longest hole in "
        "receive times and in E:",
        f"{'from-to s':>11} {'capture':>8} {'exchange':>9} {'others':>7} {'RSS MB':>7} {'in sync':>8} "
        f"{'events':>8} {'lag p95 ms':>11} {'recv gap ms':>12} {'E gap ms':>9}",
    ]
    for r in run.timeline():
        out.append(
            f"{r['from_s']:>5}-{r['to_s']:<5} {_fmt(r['capture_cpu']):>8} "
            f"{_fmt(r['exchange_cpu']):>9} {_fmt(r['others_cpu']):>7} "
            f"{_fmt(r['capture_rss_mb'], 0):>7} {r['in_sync']:>8} "
            f"{r['events']:>8} {_fmt(r['lag_p95_ms']):>11} {_fmt(r['recv_gap_ms'], 0):>12} "
            f"{_fmt(r['e_gap_ms'], 0):>9}"
        )
    # The exchange steps its markets in symbol order and stamps one E per tick, and the client
    # reads frames in that order: first vs last symbols separates the two sides' share of lag.
    k = max(1, len(run.symbols) // 10)
    a, _ = run.steady_window
    lo = run.start_us + int(a * 1e6)

    def p50(group: Sequence[str]) -> str:
        lags = sorted(lag / 1000 for g in group for i, lag in run.bronze[g].lags_us if i >= lo)
        return f"p50 {_fmt(_pct(lags, 0.5))} / p95 {_fmt(_pct(lags, 0.95))} ms"

    out += [
        "",
        f"Diff-lane lag by position in the exchange's tick: first {k} symbols "
        f"{p50(run.symbols[:k])}; last {k} symbols {p50(run.symbols[-k:])}",
        f"Capture summary: {json.dumps({k: v for k, v in run.summary.items() if k != 'burst_id'})}",
    ]
    worst = sorted(run.drops.items(), key=lambda kv: -kv[1].missing)[:5]
    if worst and worst[0][1].missing:
        out.append("Symbols with client drops: " + ", ".join(f"{s} {d.missing}" for s, d in worst))
    if run.profile is not None:
        p = run.profile
        # py-spy counts a thread that is runnable but waiting for a core as active, so its
        # sample counts overstate CPU on a busy machine: shares are of the profile, and the
        # "core %" column scales them by the CPU /proc measured over the same window.
        cpu = cpu_percent(run.capture, *p.window) or 0.0
        share = 100.0 / max(1, p.samples)
        out += [
            "",
            f"py-spy, capture process, {p.window[0]:.0f}-{p.window[1]:.0f} s at {p.rate} Hz "
            f"(--nonblocking): {p.samples} non-idle samples; capture CPU over the window "
            f"{cpu:.1f}% of one core; py-spy itself {_fmt(p.cpu_percent)}%. Time in C "
            "extensions (orjson, fastavro, numpy) is charged to the Python function calling them.",
            f"{'share %':>8} {'core %':>7} {'incl %':>7}  top {len(p.own)} functions by own time",
        ]
        incl = dict(p.inclusive)
        for name, n in p.own:
            inc = incl.get(name)
            out.append(
                f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f} "
                f"{_fmt(inc * share if inc else None):>7}  {name}"
            )
        out += ["", f"{'share %':>8} {'core %':>7}  own time by package / project module"]
        for name, n in p.packages:
            out.append(f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f}  {name}")
        out += ["", f"{'incl %':>8} {'core %':>7}  project functions by inclusive time"]
        for name, n in p.inclusive:
            out.append(f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f}  {name}")
    return "\n".join(out)
