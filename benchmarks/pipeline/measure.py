"""One measurement: start the stack, observe it, stop it, analyse."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.live import (
    fetch_sent,
    symbol_names,
)
from benchmarks.pipeline.figures import capture_figures, orchestration_figures, storage_figures
from benchmarks.pipeline.lake import LakeWatcher
from benchmarks.pipeline.observe import Observation, UiProbe, observe
from benchmarks.pipeline.processes import CpuLedger, ProcScanner, RunPids, uptime_ticks
from benchmarks.pipeline.runs import (
    capture_runs,
    check_verdicts,
    closed_hours,
    freshness,
    late_reports,
    refresh_runs,
    run_table,
    sensor_ticks,
)
from benchmarks.pipeline.settings import (
    CAPTURE_RUNS,
    CODE_SERVER,
    DAEMON,
    EXCHANGE,
    OTHER_RUNS,
    REFRESH_RUNS,
    STOP_TARGET_S,
    UI_QUERIES,
    WEBSERVER,
    Settings,
    fmt,
    spread,
    stack_env,
)
from benchmarks.pipeline.stack import (
    GRACE_S,
    StopResult,
    prepare_stack,
    start_stack,
    stop_stack,
    wait_daemon,
)
from benchmarks.pipeline.targets import LAG_TITLES, Headline, Target, targets


@dataclass
class Result:
    settings: Settings
    symbols: list[str]
    started_s: dict[str, float]
    observation: Observation
    stop: StopResult
    runs: list[dict[str, Any]]
    capture: dict[str, Any]
    refreshes: list[dict[str, Any]]
    freshness: dict[str, Any]
    closed_hours: dict[str, float | None]
    verdicts: dict[str, dict[str, Any]]
    late: list[dict[str, Any]]
    orchestration: dict[str, Any]
    storage: dict[str, Any]
    sensors: dict[str, dict[str, Any]]
    ui: dict[str, Any]
    targets: list[Target]
    home: str
    lake: dict[str, Any] = field(default_factory=dict)  # the raw landings and consumption

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": {k: str(v) for k, v in asdict(self.settings).items()},
            "symbols": self.symbols,
            "started_s": self.started_s,
            "window": {
                "start": self.observation.window_start,
                "end": self.observation.window_end,
                "crashed": self.observation.crashed,
            },
            "targets": [{**asdict(t), "verdict": t.verdict} for t in self.targets],
            "stop": asdict(self.stop),
            "capture": self.capture,
            "freshness": self.freshness,
            "closed_hours": self.closed_hours,
            "refresh_runs": [
                {
                    **{k: v for k, v in r.items() if k not in ("materializations", "checks")},
                    # Enough to recompute the freshness figures from this file.
                    "events": [
                        [
                            e.get("asset") or e.get("check"),
                            e["partition"],
                            e["at"],
                            e["meta"].get("judged_until"),
                        ]
                        for e in (*r["materializations"], *r["checks"])
                    ],
                }
                for r in self.refreshes
            ],
            "check_verdicts": self.verdicts,
            "late_reports": self.late,
            "orchestration": self.orchestration,
            "storage": self.storage,
            "sensors": self.sensors,
            "ui": self.ui,
            "runs": self.runs,
            "timeline": self.observation.timeline,
            "home": self.home,
            "lake": self.lake,
        }


@contextlib.contextmanager
def _dagster_home(path: Path) -> Iterator[None]:
    """DagsterInstance.get() reads DAGSTER_HOME: set it for the run, restore it after."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def measure(s: Settings, say: Callable[[str], None] | None = None) -> Result:
    say = say or (lambda msg: print(f"[pipeline] {msg}", file=sys.stderr, flush=True))
    symbols = symbol_names(s.symbols)
    temp = None if s.keep else Path(tempfile.mkdtemp(prefix="obp-pipeline-"))
    home = s.keep or temp
    assert home is not None
    stack = prepare_stack(s, home, symbols)
    say(f"OBP_HOME {home}; {len(symbols)} symbols, lanes {s.lanes}, interval {s.interval_s:g} s")
    ui: UiProbe | None = None
    try:
        with _dagster_home(home / ".dagster"):
            from dagster import DagsterInstance

            t0 = time.monotonic()
            started = start_stack(s, stack, symbols, say)
            instance = DagsterInstance.get()
            wait_daemon(instance, stack, t0 + s.start_timeout_s, t0, started)
            say(f"daemon up after {started[DAEMON]:.1f} s; measuring for {s.minutes:g} min")
            ui = UiProbe(stack.ui_url, stack.procs[WEBSERVER].pid, s.ui_repeats)
            ui.check()
            jobs: dict[str, str | None] = {}

            def job_of(run_id: str) -> str | None:
                if run_id not in jobs:
                    run = instance.get_run_by_id(run_id)
                    jobs[run_id] = run.job_name if run else None
                return jobs[run_id]

            ledger = CpuLedger(uptime_ticks())
            run_pids = RunPids(instance)
            scanner = ProcScanner(stack.marker, ledger, job_of, run_pids)
            lake = LakeWatcher(home)
            obs = observe(s, stack, instance, ledger, scanner, lake, ui, say)

            say("reading the exchange's sent log, then stopping everything (SIGINT)")
            sent = {sym: fetch_sent(stack.rest_url, sym) for sym in symbols}
            stop = stop_stack(stack, s.stop_timeout_s)
            say(
                f"stopped in {fmt(stop.seconds, 1)} s"
                + (
                    f"; still running at {STOP_TARGET_S:g} s: {stop.left_at_target}"
                    if stop.left_at_target
                    else ""
                )
            )
            lake.scan()  # the files the bursts published while stopping
            run_pids.refresh(active_only=False)
            ledger.resolve(run_pids)
            return analyse(
                s, symbols, started, obs, stop, instance, ledger, scanner, lake, ui, sent, home
            )
    finally:
        if ui is not None:
            ui.close()
        leftovers = stack.kill_leftovers()
        if leftovers:
            say(f"killed leftovers: {leftovers}")
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def analyse(
    s: Settings,
    symbols: list[str],
    started: dict[str, float],
    obs: Observation,
    stop: StopResult,
    instance: Any,
    ledger: CpuLedger,
    scanner: ProcScanner,
    lake: LakeWatcher,
    ui: UiProbe,
    sent: Mapping[str, list[int]],
    home: Path,
) -> Result:
    from orderbook_pipeline.config import load_config
    from orderbook_pipeline.sensors.refresh import settle_s

    config = load_config(env={**os.environ, **_config_env(s, home, symbols)})
    settle = settle_s(config.capture.file_seconds)
    runs = run_table(instance, ledger.cpu_by_run())
    captures = capture_runs(instance, runs)
    refreshes = refresh_runs(instance, runs)
    capture = capture_figures(home, sent, captures)
    fresh = freshness(lake, refreshes, obs.window_end, s.interval_s)
    closed = closed_hours(runs, obs.window_start, obs.window_end, settle)
    orchestration = orchestration_figures(ledger, obs, ui.cpu_s)
    orchestration["unclassified_processes"] = dict(scanner.others)
    storage = storage_figures(obs, len(symbols), home / ".dagster")
    ui_fig = {
        name: {k: None if v is None else round(v, 3) for k, v in spread(vals).items()}
        for name, vals in obs.ui.items()
    }
    ui_fig["errors"] = dict(ui.errors)
    failed = [f"{r['job']} {r['run_id'][:8]}" for r in runs if r["status"] == "FAILURE"]
    canceled = [f"{r['job']} {r['run_id'][:8]}" for r in runs if r["status"] == "CANCELED"]
    unfinished = [
        f"{r['job']} {r['run_id'][:8]} {r['status']}"
        for r in runs
        if r["status"] not in ("SUCCESS", "FAILURE", "CANCELED")
    ]
    h = Headline(interval_s=s.interval_s)
    h.drops_missing, h.drops_in_span = capture["drops_missing"], capture["drops_in_span"]
    h.stall_resyncs, h.resyncs_by_cause = capture["stall_resyncs"], capture["resyncs_by_cause"]
    for kind in LAG_TITLES:
        f = fresh[kind]
        h.lag_p95_s[kind] = None if f["p95"] is None else round(f["p95"], 1)
        h.lag_notes[kind] = (
            f"p50 {fmt(f['p50'])} s, max {fmt(f['max'])} s over {f['n']} files "
            f"({f['pending_over_horizon']} not done after {fresh['horizon_s']:.0f} s, "
            f"oldest {fmt(f['oldest_pending_s'])} s; {f['unjudged_recent']} too recent)"
        )
    h.closed_hours_s = closed
    o = orchestration
    pct = o["cpu_pct"]
    h.orchestration_pct = o["orchestration_pct"]
    h.orchestration_notes = (
        f"daemon {pct[DAEMON]:.1f} + code server {pct[CODE_SERVER]:.1f} + webserver "
        f"{pct[WEBSERVER]:.1f} (UI probes' {o['ui_probe_webserver_cpu_s']:.0f} s taken off) + "
        f"refresh runs {pct[REFRESH_RUNS]:.1f} + other runs {pct[OTHER_RUNS]:.1f}; capture run "
        f"workers apart: {pct[CAPTURE_RUNS]:.1f}, exchange {pct[EXCHANGE]:.1f}; machine busy "
        f"{fmt(o['machine_busy_pct'])}% of {100 * (o['cores'] or 1)}, others "
        f"{fmt(o['machine_others_pct'])}%"
    )
    h.queued = o["queued"]
    h.home_mb_per_stream_day = storage.get("mb_per_stream_day")
    h.home_notes = (
        f"{storage.get('dagster_home_bytes_start', 0) / 1e6:.1f} -> "
        f"{storage.get('dagster_home_bytes_end', 0) / 1e6:.1f} MB over "
        f"{storage.get('stream_hours')} stream-hours; event rows "
        f"{storage.get('event_rows_per_stream_day')}/stream-day"
    )
    h.ui_p95_s = {name: ui_fig[name]["p95"] for name in UI_QUERIES}
    h.ui_notes = "; ".join(
        f"{n} p50 {fmt(ui_fig[n]['p50'], 3)} max {fmt(ui_fig[n]['max'], 3)} s" for n in UI_QUERIES
    ) + (f"; errors {dict(ui.errors)}" if ui.errors else "")
    h.stop_s = None if stop.seconds is None else round(stop.seconds, 2)
    h.failed_runs, h.canceled_runs = failed, canceled
    h.stop_notes = (
        (f"left at {STOP_TARGET_S:g} s: {stop.left_at_target}; " if stop.left_at_target else "")
        + (f"SIGTERMed at {GRACE_S:g} s (as run.sh): {stop.termed}; " if stop.termed else "")
        + (f"SIGKILLed: {stop.killed}; " if stop.killed else "")
        + (f"runs never finished: {unfinished}" if unfinished else "")
    )
    return Result(
        settings=s,
        symbols=symbols,
        started_s=started,
        observation=obs,
        stop=stop,
        runs=runs,
        capture=capture,
        refreshes=refreshes,
        freshness=fresh,
        closed_hours=closed,
        verdicts=check_verdicts(refreshes),
        late=late_reports(instance),
        orchestration=orchestration,
        storage=storage,
        sensors=sensor_ticks(instance),
        ui=ui_fig,
        targets=targets(h),
        home=str(home),
        lake={
            "landings": lake.landings,
            "consumed": lake.consumed,
            "file_max": lake.file_max,
            "states": lake.state_log,
        },
    )


def _config_env(s: Settings, home: Path, symbols: Sequence[str]) -> dict[str, str]:
    env = stack_env(s, home, symbols, 1, "")
    return {k: v for k, v in env.items() if k.startswith("OBP")}
