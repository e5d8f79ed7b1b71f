"""The stack's processes: found by their marker, named by component, their CPU counted."""

from __future__ import annotations

import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.live import (
    read_proc,
)
from benchmarks.pipeline.settings import (
    CLK_TCK,
    CODE_SERVER,
    DAEMON,
    EXCHANGE,
    OTHER,
    OTHER_RUNS,
    RUN_COMPONENTS,
    RUN_WORKER,
    WEBSERVER,
)


@dataclass(frozen=True)
class Role:
    component: str
    run_id: str | None = None
    job: str | None = None


_RUN_ID_RE = re.compile(r'"(?:pipeline_)?run_id"\s*:\s*"([0-9a-f-]{8,})"')
_JOB_RE = re.compile(r'"(?:pipeline|job)_name"\s*:\s*"([^"]+)"')
_RUN_COMMANDS = ("execute_run", "execute_step", "resume_run")


def classify(argv: Sequence[str], job_of: Callable[[str], str | None] | None = None) -> Role:
    """What a process of the stack is, from its command line.

    A code server starts each run in a `multiprocessing` spawn child whose command line names
    no run (RUN_WORKER: its run is found by its pid, see RunPids). A run worker started by
    `dagster api execute_run` (the CLI, other launchers) has its ExecuteRunArgs as the last
    argument, JSON with the run id and the job's name; `job_of` looks the job up otherwise."""
    if any(a in _RUN_COMMANDS for a in argv):
        text = " ".join(argv)
        run = _RUN_ID_RE.search(text)
        run_id = run.group(1) if run else None
        named = _JOB_RE.search(text)
        job = named.group(1) if named else None
        if job is None and run_id is not None and job_of is not None:
            job = job_of(run_id)
        return Role(RUN_COMPONENTS.get(job or "", OTHER_RUNS), run_id, job)
    if any("multiprocessing.spawn import spawn_main" in a for a in argv):
        return Role(RUN_WORKER)
    names = {Path(a).name for a in argv}
    if "simulate" in argv and names & {"orderbook-pipeline", "orderbook_pipeline.cli"}:
        return Role(EXCHANGE)
    if "code-server" in argv or ("api" in argv and "grpc" in argv):
        return Role(CODE_SERVER)  # the proxy and the gRPC server it starts
    if "dagster-daemon" in names:
        return Role(DAEMON)
    if "dagster-webserver" in names:
        return Role(WEBSERVER)
    return Role(OTHER)


def run_role(run_id: str, job: str | None) -> Role:
    return Role(RUN_COMPONENTS.get(job or "", OTHER_RUNS), run_id, job)


_PID_RE = re.compile(r"Started process for run \(pid: (\d+)\)")


class RunPids:
    """pid -> (run id, job) of run workers, from the engine event each run worker logs as it
    starts ("Started process for run (pid: N)."). Only runs not mapped yet are read, and the
    active ones only while the stack runs: a few small queries when a new worker appears."""

    def __init__(self, instance: Any, min_interval_s: float = 1.0) -> None:
        self.instance = instance
        self.by_pid: dict[int, tuple[str, str]] = {}
        self.mapped: set[str] = set()
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def refresh(self, active_only: bool = True) -> None:
        from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

        self._last = time.monotonic()
        statuses = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
        records = self.instance.get_run_records(
            filters=RunsFilter(statuses=statuses) if active_only else None
        )
        for r in records:
            run = r.dagster_run
            if run.run_id in self.mapped:
                continue
            events = self.instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=10
            ).records
            for rec in events:
                m = _PID_RE.search(rec.event_log_entry.dagster_event.message or "")
                if m:
                    self.by_pid[int(m.group(1))] = (run.run_id, run.job_name)
                    self.mapped.add(run.run_id)
                    break

    def __call__(self, pid: int) -> tuple[str, str] | None:
        if pid not in self.by_pid and time.monotonic() - self._last >= self.min_interval_s:
            self.refresh()
        return self.by_pid.get(pid)


@dataclass(frozen=True)
class ProcInfo:
    """What one /proc read gives: live.read_proc's CPU and RSS, plus the start time (to tell a
    reused pid apart and whether it started inside the window) and the state (a zombie still
    shows its final CPU time, but no memory)."""

    pid: int
    ppid: int
    start_ticks: int
    state: str
    cpu_s: float
    rss_kb: int


def read_pid(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # comm may hold spaces and parentheses
    state = fields[0]
    start = int(fields[19])
    sample = None if state == "Z" else read_proc(pid, 0.0)
    cpu_s = sample.cpu_s if sample else (int(fields[11]) + int(fields[12])) / CLK_TCK
    return ProcInfo(pid, int(fields[1]), start, state, cpu_s, sample.rss_kb if sample else 0)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _carries(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def marked_pids(marker: str) -> list[int]:
    """Live processes carrying the marker (zombies have no environment left: they are gone)."""
    needle = marker.encode()
    own = os.getpid()
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != own and _carries(int(p.name), needle)
    ]


def uptime_ticks() -> int:
    """Now, in the clock ticks since boot that /proc/<pid>/stat's start times use."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * CLK_TCK)


@dataclass
class Track:
    component: str
    run_id: str | None
    base_s: float  # CPU time counted from here (0 for a process born inside the window)
    last_s: float  # the last CPU time seen
    rss_kb: int = 0
    alive: bool = True


class CpuLedger:
    """CPU seconds per process inside the window, without wait4(): run workers are the code
    server's children, not ours. A process born inside the window counts from 0 (its start-up
    is part of what a run costs); one already running counts from its first sample. Each
    process's last seen CPU time stays in the sums after it is gone, so only what it spends
    after its last sample (at most proc_s) is missed."""

    def __init__(self, window_start_ticks: int) -> None:
        self.start_ticks = window_start_ticks
        self.tracks: dict[tuple[int, int], Track] = {}
        self.peak_rss_kb: dict[str, int] = defaultdict(int)  # per component, summed over its
        # processes at each scan: a short run worker is never caught by the 30 s samples

    def observe(self, info: ProcInfo, role: Role) -> None:
        key = (info.pid, info.start_ticks)
        track = self.tracks.get(key)
        if track is None:
            base = 0.0 if info.start_ticks >= self.start_ticks else info.cpu_s
            track = self.tracks[key] = Track(role.component, role.run_id, base, info.cpu_s)
        # A forked worker shows its parent's command line until it execs: the latest wins.
        track.component, track.run_id = role.component, role.run_id or track.run_id
        track.last_s = max(track.last_s, info.cpu_s)
        track.rss_kb = info.rss_kb
        track.alive = info.state != "Z"

    def retire(self, live: set[tuple[int, int]]) -> None:
        for key, track in self.tracks.items():
            if key not in live:
                track.alive, track.rss_kb = False, 0
        for component, kb in self.rss_by_component().items():
            self.peak_rss_kb[component] = max(self.peak_rss_kb[component], kb)

    def cpu_by_component(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for t in self.tracks.values():
            out[t.component] += t.last_s - t.base_s
        return dict(out)

    def cpu_by_run(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for t in self.tracks.values():
            if t.run_id:
                out[t.run_id] += t.last_s - t.base_s
        return dict(out)

    def rss_by_component(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for t in self.tracks.values():
            if t.alive:
                out[t.component] += t.rss_kb
        return dict(out)

    def resolve(self, run_of: Callable[[int], tuple[str, str] | None]) -> None:
        """Run workers whose run was not known while they ran (a short refresh)."""
        for (pid, _start), track in self.tracks.items():
            if track.component == RUN_WORKER and (found := run_of(pid)) is not None:
                role = run_role(*found)
                track.component, track.run_id = role.component, role.run_id

    def alive_by_component(self) -> dict[str, int]:
        return dict(Counter(t.component for t in self.tracks.values() if t.alive))


class ProcScanner:
    """Finds the stack's processes by the marker and feeds the ledger (every proc_s)."""

    def __init__(
        self,
        marker: str,
        ledger: CpuLedger,
        job_of: Callable[[str], str | None],
        run_of: Callable[[int], tuple[str, str] | None],
    ) -> None:
        self.marker = marker.encode()
        self.ledger = ledger
        self.job_of = job_of
        self.run_of = run_of
        self.ours: dict[tuple[int, int], bool] = {}  # (pid, start) -> carries the marker
        self.roles: dict[tuple[int, int, int], Role] = {}  # (pid, start, cmdline length)
        self.last: dict[tuple[int, int], Role] = {}  # (pid, start) -> its latest role
        self.others: Counter[str] = Counter()  # command lines of unclassified processes

    def scan(self) -> None:
        found: list[tuple[ProcInfo, Role]] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            info = read_pid(int(entry.name))
            if info is None:
                continue
            key = (info.pid, info.start_ticks)
            if key not in self.ours:
                # A process's environment never changes: read it once per process.
                self.ours[key] = info.pid != os.getpid() and _carries(info.pid, self.marker)
            if self.ours[key]:
                found.append((info, self._role(info.pid, key)))
        # Helpers a process starts for itself (a run worker's `tail -F` of its compute logs and
        # its orphan watcher, the code server's multiprocessing resource tracker) are its cost.
        by_pid = {info.pid: role for info, role in found}
        for info, role in found:
            parent = by_pid.get(info.ppid)
            known = self.ledger.tracks.get((info.pid, info.start_ticks))
            if role.component != OTHER:
                pass
            elif parent is not None and parent.component != OTHER:
                role = parent
            elif known is not None and known.component != OTHER:
                role = Role(known.component, known.run_id)  # its parent has gone first
            elif known is None:
                self.others[" ".join(cmdline(info.pid))[:120]] += 1
            self.ledger.observe(info, role)
        self.ledger.retire({(info.pid, info.start_ticks) for info, _ in found})

    def _role(self, pid: int, key: tuple[int, int]) -> Role:
        argv = cmdline(pid)
        if not argv:
            # Exiting or a zombie: no command line any more. Keep what it was, or its CPU
            # would move to whatever an empty command line (or its parent) classifies as.
            return self.last.get(key, Role(OTHER))
        # The length tells a forked child that has since exec'd from its first reading.
        role_key = (*key, sum(len(a) for a in argv))
        role = self.roles.get(role_key)
        if role is None or role.component == RUN_WORKER:
            role = classify(argv, self.job_of)
            if role.component == RUN_WORKER and (found := self.run_of(pid)) is not None:
                role = run_role(*found)
            self.roles[role_key] = role
        self.last[key] = role
        return role
