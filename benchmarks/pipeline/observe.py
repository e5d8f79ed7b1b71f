"""The sampling loop, and the probes it runs: the UI's queries, DAGSTER_HOME, the queue."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.live import (
    cpu_percent,
    read_machine,
    read_proc,
)
from benchmarks.pipeline.lake import LakeWatcher
from benchmarks.pipeline.processes import CpuLedger, ProcScanner
from benchmarks.pipeline.settings import (
    CAPTURE_RUNS,
    CODE_SERVER,
    COMPONENTS,
    DAEMON,
    EXCHANGE,
    REFRESH_RUNS,
    UI_QUERIES,
    WEBSERVER,
    Settings,
    fmt,
)
from benchmarks.pipeline.stack import Stack, graphql


class UiProbe:
    """Times the UI's queries; the webserver CPU they cost is measured, to be told apart from
    what the webserver spends by itself."""

    def __init__(self, url: str, webserver_pid: int, repeats: int) -> None:
        self.url = url
        self.pid = webserver_pid
        self.repeats = repeats
        self.client = httpx.Client(timeout=120)
        self.cpu_s = 0.0
        self.errors: Counter[str] = Counter()

    def check(self) -> None:
        """Every query must be valid against this webserver's schema: fail now, not later."""
        for name, query in UI_QUERIES.items():
            body = graphql(self.client, self.url, query)
            if body.get("errors"):
                raise RuntimeError(f"UI query {name} rejected: {body['errors'][:1]}")

    def measure(self) -> dict[str, list[float]]:
        before = read_proc(self.pid, 0.0)
        out: dict[str, list[float]] = {name: [] for name in UI_QUERIES}
        for _ in range(self.repeats):
            for name, query in UI_QUERIES.items():
                t = time.perf_counter()
                try:
                    body = graphql(self.client, self.url, query)
                except (httpx.HTTPError, ValueError) as exc:
                    self.errors[f"{name}: {type(exc).__name__}"] += 1
                    continue
                if body.get("errors"):
                    self.errors[f"{name}: {str(body['errors'][0].get('message'))[:80]}"] += 1
                    continue
                out[name].append(time.perf_counter() - t)
        after = read_proc(self.pid, 0.0)
        if before and after:
            self.cpu_s += after.cpu_s - before.cpu_s
        return out

    def close(self) -> None:
        self.client.close()


def dir_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def home_breakdown(dagster_home: Path) -> dict[str, Any]:
    """Where DAGSTER_HOME's bytes are: run event-log shards (one sqlite file per run), the
    index shard, the run and schedule databases, compute logs, the rest."""
    out: Counter[str] = Counter()
    shards = 0
    for dirpath, _dirs, files in os.walk(dagster_home):
        rel = os.path.relpath(dirpath, dagster_home)
        for name in files:
            try:
                size = os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
            if rel == os.path.join("history", "runs"):
                kind = "index shard" if name.startswith("index.db") else "run shards"
                shards += name.endswith(".db") and not name.startswith("index.db")
            elif rel == "history":
                kind = "runs db"
            elif rel.startswith("storage"):
                kind = "compute logs"
            elif rel.startswith("schedules"):
                kind = "schedules db (ticks)"
            else:
                kind = "other"
            out[kind] += size
    return {"bytes": dict(out), "run_shards": shards}


def event_log_rows(dagster_home: Path) -> int | None:
    """Rows of `event_logs` over the run shards and the index shard (read-only sqlite)."""
    total, found = 0, False
    for db in sorted((dagster_home / "history").rglob("*.db")):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            continue
        try:
            total += con.execute("SELECT count(*) FROM event_logs").fetchone()[0]
            found = True
        except sqlite3.Error:
            pass  # runs.db and schedules.db have no event log
        finally:
            con.close()
    return total if found else None


def run_counts(instance: Any) -> tuple[int, dict[str, dict[str, int]]]:
    """Queued runs, and runs by job and status."""
    from dagster import DagsterRunStatus, RunsFilter

    queued = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
    by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in instance.get_run_records():
        by[r.dagster_run.job_name][r.dagster_run.status.value] += 1
    return int(queued), {job: dict(v) for job, v in by.items()}


@dataclass
class Observation:
    """Everything sampled while the stack ran."""

    window_start: float  # wall
    marker: str = ""  # the stack's processes carry it in their environment
    window_end: float = 0.0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    machine: list[Any] = field(default_factory=list)  # live.Sample, t = wall - window_start
    harness_cpu_s: float = 0.0
    ui: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in UI_QUERIES})
    crashed: str = ""


def observe(
    s: Settings,
    stack: Stack,
    instance: Any,
    ledger: CpuLedger,
    scanner: ProcScanner,
    lake: LakeWatcher,
    ui: UiProbe,
    say: Callable[[str], None],
) -> Observation:
    obs = Observation(window_start=time.time(), marker=stack.marker)
    harness0 = sum(os.times()[:2])
    t0 = time.monotonic()
    end = t0 + s.minutes * 60
    dagster_home = stack.home / ".dagster"
    due = {"proc": t0, "lake": t0, "sample": t0}
    prev_cpu: dict[str, float] = {}
    prev_t = t0
    while True:
        now = time.monotonic()
        if now >= due["proc"]:
            scanner.scan()
            due["proc"] += s.proc_s
        if now >= due["lake"]:
            lake.scan()
            due["lake"] += s.lake_s
        if now >= due["sample"] or now >= end:
            obs.machine.append(read_machine(time.time() - obs.window_start))
            latencies = ui.measure()
            for name, values in latencies.items():
                obs.ui[name].extend(values)
            queued, runs = run_counts(instance)
            cpu = ledger.cpu_by_component()
            span = max(1e-9, now - prev_t)
            pct = {c: 100 * (cpu.get(c, 0.0) - prev_cpu.get(c, 0.0)) / span for c in COMPONENTS}
            m = obs.machine
            machine_pct = cpu_percent(m, m[-2].t, m[-1].t) if len(m) >= 2 else None
            row = {
                "t": round(time.time() - obs.window_start, 1),
                "cpu_pct": {c: round(v, 1) for c, v in pct.items()},
                "rss_mb": {c: round(v / 1024, 1) for c, v in ledger.rss_by_component().items()},
                "processes": ledger.alive_by_component(),
                "machine_pct": None if machine_pct is None else round(machine_pct, 1),
                "queued": queued,
                "runs": runs,
                "dagster_home_bytes": dir_bytes(dagster_home),
                "event_log_rows": event_log_rows(dagster_home),
                "ui_s": {n: [round(v, 3) for v in vals] for n, vals in latencies.items()},
                "bronze_files": len(lake.landings),
                "bronze_consumed": len(lake.consumed),
                "silver_states": len(lake.state_mtimes),
            }
            obs.timeline.append(row)
            prev_cpu, prev_t = cpu, now
            say(_sample_line(row))
            due["sample"] += s.sample_s
        if now >= end:
            break
        try:
            stack.check_alive()
        except RuntimeError as exc:
            obs.crashed = str(exc)
            say(f"STACK COMPONENT EXITED: {exc}")
            break
        time.sleep(max(0.05, min(due.values()) - time.monotonic()))
    scanner.scan()
    lake.scan()
    obs.window_end = time.time()
    obs.harness_cpu_s = sum(os.times()[:2]) - harness0
    return obs


def _sample_line(row: dict[str, Any]) -> str:
    cpu, runs = row["cpu_pct"], row["runs"]

    def jobs(job: str) -> str:
        st = runs.get(job, {})
        active = sum(v for k, v in st.items() if k in ("STARTED", "STARTING", "QUEUED"))
        return f"{st.get('SUCCESS', 0)}ok/{st.get('FAILURE', 0)}fail/{active}act"

    ui = row["ui_s"]
    return (
        f"t={row['t']:>5.0f}s cpu% exch {cpu[EXCHANGE]:.0f} cs {cpu[CODE_SERVER]:.0f} "
        f"dmn {cpu[DAEMON]:.0f} web {cpu[WEBSERVER]:.0f} cap {cpu[CAPTURE_RUNS]:.0f} "
        f"ref {cpu[REFRESH_RUNS]:.0f} | machine {fmt(row['machine_pct'])}% | "
        f"capture {jobs('capture_job')} refresh {jobs('refresh_job')} queued {row['queued']} | "
        f"home {row['dagster_home_bytes'] / 1e6:.1f} MB {row['event_log_rows']} rows | "
        f"ui {fmt(max(ui['catalog'], default=None), 2)}/"
        f"{fmt(max(ui['partitions'], default=None), 2)} s | bronze {row['bronze_files']} "
        f"({row['bronze_consumed']} in silver) states {row['silver_states']}"
    )
