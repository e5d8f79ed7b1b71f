"""Capture hot-path benchmark: Binance depth diffs -> book -> L2 records -> Avro, per event.

    python -m benchmarks.run                      # full: ~60k history, windows of ~2 s, 5 rounds
    python -m benchmarks.run --quick              # small stream, 2 rounds (tests); well under a minute
    python -m benchmarks.run --only ours,baseline --rounds 7 --json /tmp/bench.json
    python -m benchmarks.run --worker NAME --n N  # internal: one timed run, prints JSON

Method (that of shared/bench/anchors.py): every measurement runs in a fresh process; contenders
are first calibrated on the same short window, whose final books must agree between all book
contenders before anything else runs (else the run aborts); then rounds interleave the
contenders in rotated order, each round measuring `orjson parse only` too, and the report gives
medians [min-max] over rounds and the median of per-round ratios to that parse-only rate. Every
timed window starts after `history` untimed events: books behave differently after churn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import stream
from benchmarks.contenders import discover
from benchmarks.contenders.floor import BASE

ROOT = Path(__file__).resolve().parent.parent
# The compiled core's targets: ratio of events/s to orjson parse-only, same round.
TARGETS = (
    ("ours depth 20", 0.35),
    ("ours depths 10,20,50", 0.25),
    ("ours depths 10,20,50 + diff lane", 0.2),
)
# (module, its figures function, the flag that skips it): live runs twice, book lanes and every lane.
FIGURE_MODULES = (
    ("benchmarks.stages", "figures", "skip_stages"),
    ("benchmarks.live", "figures", "skip_live"),
    ("benchmarks.live", "every_lane_figures", "skip_live"),
)
PACKAGES = (
    "orjson",
    "msgspec",
    "sortedcontainers",
    "fastavro",
    "cramjam",
    "numpy",
    "pyarrow",
    "duckdb",
    "websockets",
)


class CrossCheckError(SystemExit):
    """The contenders' final books disagree: no speed may be reported."""


@dataclass(frozen=True)
class Mode:
    spec: stream.StreamSpec
    rounds: int
    calib_n: int
    target_secs: float


def mode_of(args: argparse.Namespace) -> Mode:
    if args.quick:
        mode = Mode(stream.QUICK, rounds=2, calib_n=200, target_secs=0.1)
    else:
        mode = Mode(stream.FULL, rounds=5, calib_n=3000, target_secs=2.0)
    return Mode(
        mode.spec,
        args.rounds or mode.rounds,
        args.calib_n or mode.calib_n,
        args.target_secs or mode.target_secs,
    )


# ---------------------------------------------------------------- one measurement (worker)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> bool:
    """Forget the peak RSS so far (Linux: "5" > clear_refs resets VmHWM), so that the peak read
    after the run is the run's own, not a transient of loading the input."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(name: str, n: int, mode: Mode) -> dict[str, Any]:
    """Time one contender over the first n events after the history, in this process."""
    contenders, problems = discover()
    if name not in contenders:
        raise SystemExit(f"no contender {name!r}" + "".join(f"; {p}" for p in problems))
    snapshot, history, window = stream.load(mode.spec, n)
    gc.collect()
    exact_peak = _reset_peak()
    base = _status_mb("VmRSS")
    process = contenders[name].setup(snapshot, history)
    gc.collect()
    # CPU time of this process, not wall time: the machines are shared, and a neighbour taking
    # the core for a while must not count as our time (both sides of every ratio are measured
    # alike; the instrument in ../shared/bench uses wall time on a quieter machine).
    t0 = time.process_time()
    out = process(window)
    secs = time.process_time() - t0
    if exact_peak:
        peak = _status_mb("VmHWM")
    else:  # includes loading the input: an upper bound of the run's own peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    check, extra = (
        (out.get("check"), out.get("extra") or {}) if isinstance(out, dict) else (out, {})
    )
    return {
        "name": name,
        "n": len(window),
        "secs": secs,
        "check": check,
        "rss_base_mb": round(base, 1),
        "rss_peak_mb": round(peak, 1),
        "extra": extra,
    }


def spawn(name: str, n: int, quick: bool) -> dict[str, Any]:
    """One measurement in a fresh interpreter: no heap or GC state shared between contenders."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", name, "--n", str(n)]
    p = subprocess.run(
        [*cmd, *(["--quick"] if quick else [])], capture_output=True, text=True, cwd=ROOT
    )
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        return {"name": name, "n": n, "error": err[-1] if err else f"exit status {p.returncode}"}
    result: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- cross-check


def _same(a: list[float], b: list[float]) -> bool:
    # Prices must be identical (each is one float() of the same decimal string); the rounded
    # quantity total may differ in its last digit between summation orders.
    return a[:2] == b[:2] and math.isclose(a[2], b[2], rel_tol=0, abs_tol=2e-6)


def cross_check(results: list[dict[str, Any]], what: str) -> list[str]:
    """Lines describing the agreeing books; raises CrossCheckError on any disagreement."""
    booked = [r for r in results if r.get("check") is not None]
    if not booked:
        return [f"- no book contender ran on {what}"]
    ref = booked[0]
    lines = [f"- {r['name']}: {r['check']}" for r in booked]
    if any(not _same(r["check"], ref["check"]) for r in booked[1:]):
        raise CrossCheckError(
            f"CROSS-CHECK FAILED on {what}: the contenders' final books disagree "
            "([best bid, best ask, total qty of the top 20 levels of both sides]), "
            "so no speed is reported:\n" + "\n".join(lines)
        )
    return lines


# ---------------------------------------------------------------- driver


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def calibrate(names: list[str], mode: Mode, quick: bool) -> tuple[dict[str, int], list[dict]]:
    """Every contender on the same calib_n events: window sizes aimed at target_secs, and the
    runs whose final books are cross-checked."""
    sizes, calib = {}, []
    for name in names:
        r = spawn(name, mode.calib_n, quick)
        calib.append(r)
        if "error" in r:
            log(f"calibration of {name} failed: {r['error']}")
            continue
        rate = r["n"] / r["secs"]
        sizes[name] = int(min(mode.spec.window_max, max(mode.calib_n, rate * mode.target_secs)))
        log(f"calibrated {name}: {rate:,.0f} events/s -> window {sizes[name]}  check {r['check']}")
    return sizes, calib


def run_rounds(sizes: dict[str, int], mode: Mode, quick: bool) -> list[dict[str, Any]]:
    names, runs = list(sizes), []
    for rnd in range(mode.rounds):
        k = rnd % len(names)
        for name in names[k:] + names[:k]:  # rotated: no contender always runs first or last
            r = spawn(name, sizes[name], quick)
            r["round"] = rnd
            runs.append(r)
            log(json.dumps(r))
    return runs


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _fmt(x: float) -> str:
    if x != x:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def summarize(names: list[str], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per contender: rates, per-round ratios to the parse-only run of the same round, RSS."""
    base_by_round = {
        r["round"]: r["n"] / r["secs"] for r in runs if r["name"] == BASE and "secs" in r
    }
    rows = []
    for name in names:
        ok = [r for r in runs if r["name"] == name and "secs" in r]
        errors = [r["error"] for r in runs if r["name"] == name and "error" in r]
        rates = [r["n"] / r["secs"] for r in ok]
        ratios = [
            r["n"] / r["secs"] / base_by_round[r["round"]]
            for r in ok
            if r["round"] in base_by_round
        ]
        rows.append(
            {
                "name": name,
                "n": ok[0]["n"] if ok else None,
                "rates": rates,
                "rate_median": _med(rates),
                "us_per_event": 1e6 / _med(rates) if rates else float("nan"),
                "ratio_median": _med(ratios),
                "rss_delta_mb": _med([r["rss_peak_mb"] - r["rss_base_mb"] for r in ok]),
                "extra": ok[-1]["extra"] if ok else {},
                "errors": errors,
            }
        )
    return rows


def check_rounds(runs: list[dict[str, Any]]) -> None:
    """A contender's final book must be the same in every round (same window): else it is not
    deterministic and its timings measure different work."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if r.get("check") is not None:
            by_name.setdefault(r["name"], []).append(r)
    for name, rs in by_name.items():
        if any(not _same(r["check"], rs[0]["check"]) for r in rs[1:]):
            raise CrossCheckError(
                f"CROSS-CHECK FAILED: {name} ended with different books in different rounds on "
                f"the same window: {[r['check'] for r in rs]}"
            )


def target_lines(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    by_name = {r["name"]: r for r in rows}
    lines, out = [], []
    for name, floor in TARGETS:
        row = by_name.get(name)
        ratio = row["ratio_median"] if row else float("nan")
        met = ratio == ratio and ratio >= floor
        got = f"{ratio:.3f}" if ratio == ratio else "not run"
        lines.append(
            f"- {name}: ratio vs orjson parse-only >= {floor}: {got} -> {'MET' if met else 'NOT MET'}"
        )
        out.append(
            {
                "name": name,
                "target_ratio": floor,
                "ratio": ratio if ratio == ratio else None,
                "met": met,
            }
        )
    return lines, out


def table(
    rows: list[dict[str, Any]], notes: dict[str, str], sizes: dict[str, int], booked: set[str]
) -> list[str]:
    lines = [
        "| approach | events/s median [min-max] | µs/event | ratio vs parse-only | RSS +MB | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        note = notes[row["name"]] + f"; window {sizes.get(row['name'], '-')} events"
        if row["name"] not in booked:
            note += "; keeps no book (not cross-checked)"
        note += "".join(f"; {k}={v}" for k, v in row["extra"].items())
        if row["errors"]:
            note += f"; {len(row['errors'])} failed runs: {row['errors'][0]}"
        if not row["rates"]:
            lines.append(f"| {row['name']} | failed | | | | {note} |")
            continue
        span = f"{_fmt(row['rate_median'])} [{_fmt(min(row['rates']))}-{_fmt(max(row['rates']))}]"
        lines.append(
            f"| {row['name']} | {span} | {row['us_per_event']:.1f} | {row['ratio_median']:.3f} | "
            f"{row['rss_delta_mb']:.0f} | {note} |"
        )
    return lines


def figures(args: argparse.Namespace) -> tuple[list[str], list[dict[str, Any]]]:
    """Figures of the other benchmark modules (stages after capture, live sockets), if present."""
    import importlib

    lines = [
        "| figure | value | unit | target | met | notes |",
        "|---|---:|---|---|---|---|",
    ]
    found: list[dict[str, Any]] = []
    for module_name, function, skip in FIGURE_MODULES:
        if getattr(args, skip):
            lines.append(f"| {module_name} | | | | | skipped (--{skip.replace('_', '-')}) |")
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                lines.append(f"| {module_name} | | | | | not present |")
                continue
            lines.append(f"| {module_name} | | | | | failed to import: {exc} |")
            continue
        log(f"running {module_name}.{function}(quick={args.quick})")
        try:
            got = list(getattr(module, function)(args.quick))
        except Exception as exc:  # their failure must not lose our table
            lines.append(f"| {module_name} | | | | | failed: {type(exc).__name__}: {exc} |")
            continue
        for f in got:
            met = {True: "MET", False: "NOT MET"}.get(f.get("met"), "-")
            lines.append(
                f"| {f.get('name')} | {f.get('value')} | {f.get('unit', '')} | "
                f"{f.get('target') if f.get('target') is not None else '-'} | {met} | {f.get('notes', '')} |"
            )
            found.append({"module": module_name, "function": function, **f})
    return lines, found


_RUN_NAMES = {"figures": "", "every_lane_figures": " (every lane)"}


def target_table(targets: list[dict[str, Any]], found: list[dict[str, Any]]) -> list[str]:
    """Every figure that has a target, hot path first, each with MET / NOT MET: the table the
    compiled core is judged by, printed last so that it is what a reader sees."""
    lines = ["| figure | measured | target | met |", "|---|---:|---:|---|"]
    for t in targets:
        got = "not run" if t["ratio"] is None else f"{t['ratio']:.3f}"
        met = "MET" if t["met"] else "NOT MET"
        lines.append(
            f"| {t['name']}: ratio to orjson parse-only | {got} | >= {t['target_ratio']} | {met} |"
        )
    for f in found:
        if f.get("target") is None or f.get("met") is None:
            continue
        where = f["module"].removeprefix("benchmarks.") + _RUN_NAMES.get(f["function"], "")
        met = "MET" if f["met"] else "NOT MET"
        lines.append(
            f"| {f['name']} [{where}] | {f.get('value')} {f.get('unit', '')} | {f['target']} | {met} |"
        )
    return lines


def machine() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for pkg in PACKAGES:
        try:
            versions.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            versions.append(f"{pkg} -")
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": ", ".join(versions),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    ap.add_argument("--quick", action="store_true", help="small stream and windows, for tests")
    ap.add_argument("--only", help="comma-separated name substrings (parse-only always runs)")
    ap.add_argument("--skip-live", action="store_true", help="without benchmarks.live figures")
    ap.add_argument("--skip-stages", action="store_true", help="without benchmarks.stages figures")
    ap.add_argument("--json", help="also write every run and figure to this file")
    ap.add_argument("--target-secs", type=float, help="aim each timed run at this long (2 s)")
    ap.add_argument("--calib-n", type=int, help="events of the calibration/cross-check window")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    mode = mode_of(args)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, mode)))
        return 0

    contenders, problems = discover()
    for p in problems:
        log(f"contender module not loaded: {p}")
    wanted = [s.strip() for s in (args.only or "").split(",") if s.strip()]
    names = [n for n in contenders if not wanted or n == BASE or any(s in n for s in wanted)]
    if BASE not in names:
        raise SystemExit(f"the ratio base {BASE!r} is missing")
    load_start = os.getloadavg()[0]  # the cores are shared: say how busy they were
    stats = stream.ensure(mode.spec, log=log)
    log(f"stream {stream.stream_dir(mode.spec)}: {json.dumps(stats)}")

    sizes, calib = calibrate(names, mode, args.quick)
    if BASE not in sizes:
        raise SystemExit(f"the ratio base {BASE!r} failed: {calib[names.index(BASE)]['error']}")
    what = f"the {mode.calib_n} events after the {mode.spec.history}-event history"
    check_lines = cross_check(calib, what)  # before any speed is measured, let alone reported
    runs = run_rounds(sizes, mode, args.quick)
    check_rounds(runs)

    rows = summarize(names, runs + [r for r in calib if "error" in r])
    notes = {n: contenders[n].notes for n in names}
    tlines, tresults = target_lines(rows)
    info = machine()
    info["load"] = (
        f"1-min load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    out = [
        "# Capture hot-path benchmark",
        "",
        f"Machine: {info['cores']} cores ({info['cpu']}), shared; Python {info['python']}, "
        f"{info['platform']}; {info['load']}.  ",
        f"Packages: {info['packages']}.  ",
        f"Date: {info['date']}.  Command: `{info['command']}`.  ",
        f"Stream: {stream.stream_dir(mode.spec)}: {stats['events']} events, "
        f"{stats['mean_changes_per_event']} changes/event (delete share {stats['delete_share']}), "
        f"{stats['mean_bytes_per_event']} B/event, snapshot of {stats['snapshot_levels']} levels a "
        f"side, {stats['levels_per_side_end']['bids']}/{stats['levels_per_side_end']['asks']} "
        "bid/ask levels at the end.",
        "",
        f"Each number: median over {mode.rounds} interleaved rounds [min-max], one fresh process per "
        f"measurement, timed window = the events after {mode.spec.history} untimed events of "
        f"history, sized per contender to take ~{mode.target_secs} s (at most "
        f"{mode.spec.window_max}). Ratio = events/s divided by `{BASE}` of the same round, median "
        "over rounds. RSS +MB = peak RSS minus RSS once the input was loaded.",
        "",
        *table(rows, notes, sizes, {r["name"] for r in calib if r.get("check") is not None}),
        "",
        "Targets (the compiled capture core):",
        "",
        *tlines,
        "",
        f"Cross-check on {what}: [best bid, best ask, total qty of the top 20 levels of both "
        "sides] of the final book; all agree:",
        "",
        *check_lines,
    ]
    out += [f"- not loaded: {p}" for p in problems]
    flines, fresults = figures(args)
    out += ["", "## Stages and live figures", "", *flines]
    out += [
        "",
        "## Every target, after the book cross-check",
        "",
        *target_table(tresults, fresults),
    ]
    print("\n".join(out), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "stream": stats,
                    "windows": sizes,
                    "calibration": calib,
                    "runs": runs,
                    "rows": rows,
                    "targets": tresults,
                    "figures": fresults,
                    "problems": problems,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
