"""The report printed at the end, and the command line."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import benchmarks.pipeline
from benchmarks.pipeline.measure import Result, measure
from benchmarks.pipeline.settings import COMPONENTS, OTHER, RUN_WORKER, Settings, fmt


def render(r: Result) -> str:
    s, o = r.settings, r.orchestration
    out = [
        f"Pipeline benchmark: {s.symbols} symbols, lanes {s.lanes}, {s.minutes:g} min measured, "
        f"refresh interval {s.interval_s:g} s" + (f", {' '.join(s.sets)}" if s.sets else ""),
        f"Machine: {o['cores']} cores, busy {fmt(o['machine_busy_pct'])}% of one core on average "
        f"(others {fmt(o['machine_others_pct'])}%, this harness {o['harness_pct']}%), load "
        f"average {' '.join(f'{x:.2f}' for x in o['loadavg'])}",
        "Start-up (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r.started_s.items()),
    ]
    if r.observation.crashed:
        out.append(f"STACK COMPONENT EXITED EARLY: {r.observation.crashed.splitlines()[0]}")
    out += [
        "",
        "| figure | measured | unit | target | verdict | notes |",
        "|---|---:|---|---|---|---|",
    ]
    for t in r.targets:
        out.append(
            f"| {t.name} | {fmt(t.value, 2)} | {t.unit} | {t.target} | {t.verdict} | {t.notes} |"
        )
    c = r.capture
    cov, cov_s = c["l2_uncovered_share"], c["l2_uncovered_share_after_first_sync"]

    def share(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.3f}%"

    out += [
        "",
        f"Capture: {len(c['bursts'])} bursts; sent events not in any in-sync L2 record: median "
        f"{share(cov['median'])}, p10 {share(cov['p10'])}, worst {share(cov['worst'])} (after "
        f"each symbol's first sync: median {share(cov_s['median'])}, worst "
        f"{share(cov_s['worst'])}); {c['unknown']} received but never sent; "
        f"{c['after_sent_log']} after the sent log was read; resyncs by cause "
        f"{c['resyncs_by_cause']}",
        "",
        "CPU % of one core over the window (RSS peak MB):",
        "  "
        + ", ".join(
            f"{comp} {o['cpu_pct'].get(comp, 0):.1f} ({o['rss_peak_mb'].get(comp, 0):.0f})"
            for comp in (*COMPONENTS, RUN_WORKER, OTHER)
            if comp in COMPONENTS or o["cpu_pct"].get(comp)
        ),
        "",
        "Refresh runs (start, seconds, refresh CPU s / process CPU s, end - judged_until, gaps, "
        "failed checks):",
    ]
    for run in r.refreshes:
        start = time.strftime("%H:%M:%S", time.gmtime(run["start"])) if run["start"] else "-"
        took = fmt(run["end"] - run["start"], 1) if run["start"] and run["end"] else "-"
        out.append(
            f"  {run['run_id'][:8]} {run['partition']} final={run['final']} {run['status']:<8} "
            f"{start} {took:>5} s  cpu {run['refresh_cpu_seconds']}/{run['process_cpu_s']}  "
            f"lag {run['lag_end_minus_judged_s']} s  gaps {run['gaps']}  "
            f"{', '.join(run['checks_failed']) or 'all checks passed'}"
        )
    for hour, v in r.verdicts.items():
        checks = ", ".join(
            f"{name.split('/', 1)[1]} {'ok' if c['passed'] else 'FAILED'}"
            f" ({c['streams_failed']}/{c['streams_judged']})"
            for name, c in v["checks"].items()
        )
        out.append(f"Hour {hour} (last refresh, gaps {v['gaps']} {v['gap_causes']}): {checks}")
    if r.late:
        out.append(f"judged_in_time reported late by the sensor: {r.late}")
    out += ["", "Sensor ticks (s): p50 / p95 / max, ticks:"]
    for name, t in r.sensors.items():
        out.append(
            f"  {name}: {fmt(t['p50'], 3)} / {fmt(t['p95'], 3)} / {fmt(t['max'], 3)}, "
            f"{t['ticks']} {t['statuses']}"
        )
    st = r.storage
    if st:
        out.append(
            f"Storage: DAGSTER_HOME {st['dagster_home_bytes_start'] / 1e6:.2f} -> "
            f"{st['dagster_home_bytes_end'] / 1e6:.2f} MB, {st['bytes_per_stream_hour']} B per "
            f"stream-hour ({st['mb_per_stream_day']} MB/stream-day); event-log rows "
            f"{st['event_rows_start']} -> {st['event_rows_end']}, "
            f"{st['event_rows_per_stream_hour']} per stream-hour; at the end: "
            + ", ".join(
                f"{k} {v / 1e6:.2f} MB" for k, v in sorted(st["breakdown_end"]["bytes"].items())
            )
            + f" ({st['breakdown_end']['run_shards']} run shards)"
        )
    by_job: dict[str, Counter[str]] = defaultdict(Counter)
    for run in r.runs:
        by_job[run["job"]][run["status"]] += 1
    out.append("Runs: " + "; ".join(f"{j} {dict(v)}" for j, v in sorted(by_job.items())))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=(benchmarks.pipeline.__doc__ or "").split("\n")[0],
    )
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=8.0, help="measured, after start-up")
    parser.add_argument("--lanes", default="l2,diffs", help="comma-separated, or 'all'")
    parser.add_argument(
        "--interval", type=float, default=300.0, help="refresh interval, seconds (default 300)"
    )
    parser.add_argument("--keep", type=Path, help="OBP_HOME to use and keep (else a temporary)")
    parser.add_argument("--json", type=Path, help="write every figure and the time series here")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="more configuration, e.g. capture.file_seconds=10 (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        symbols=args.symbols,
        minutes=args.minutes,
        lanes=args.lanes,
        interval_s=args.interval,
        keep=args.keep.resolve() if args.keep else None,
        sets=tuple(args.sets),
    )
    result = measure(settings)
    print(render(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1, default=str))
    return 0
