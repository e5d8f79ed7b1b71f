"""Starting and stopping the stack as scripts/run.sh does: one session per process."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.live import (
    fetch_sent,
)
from benchmarks.pipeline.processes import cmdline, marked_pids
from benchmarks.pipeline.settings import (
    BIN,
    CODE_SERVER,
    DAEMON,
    EXCHANGE,
    LOCATION,
    MARKER_VAR,
    ROOT,
    STOP_TARGET_S,
    UI_QUERIES,
    VENUE,
    WEBSERVER,
    Settings,
    stack_env,
)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@dataclass
class Stack:
    home: Path
    logs: Path
    env: dict[str, str]
    marker: str
    sim_port: int
    grpc_port: int
    ui_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.home / "workspace.yaml"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        # A session of its own (as run.sh's setsid): the stop reaches each process group, run
        # workers with the code server that started them, as a terminal's Ctrl-C would.
        with (self.logs / f"{name.replace(' ', '_')}.log").open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name.replace(' ', '_')}.log"

    def exited(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def check_alive(self) -> None:
        for name, rc in self.exited().items():
            raise RuntimeError(f"the {name} exited ({rc}):\n{tail(self.log_of(name))}")

    def interrupt(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGINT)

    def kill_leftovers(self) -> list[str]:
        """SIGKILL to every process this run started (found by the marker, by pid)."""
        left = []
        for pid in marked_pids(self.marker):
            left.append(f"{pid} {' '.join(cmdline(pid))[:120]}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        return left


def prepare_stack(s: Settings, home: Path, symbols: Sequence[str]) -> Stack:
    home.mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    dagster_home = home / ".dagster"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy2(
        ROOT / "instance" / "dagster.yaml", dagster_home / "dagster.yaml"
    )  # as scripts/run.sh
    sim_port, grpc_port, ui_port = free_ports(3)
    marker = f"{MARKER_VAR}={os.getpid()}.{secrets.token_hex(4)}"
    env = stack_env(s, home, symbols, sim_port, marker.split("=", 1)[1])
    stack = Stack(home, logs, env, marker, sim_port, grpc_port, ui_port)
    stack.workspace.write_text(
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: 127.0.0.1\n      port: {grpc_port}\n      location_name: {LOCATION}\n"
    )
    return stack


def _wait(what: str, ready: Callable[[], bool], stack: Stack, deadline: float) -> None:
    while True:
        stack.check_alive()
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in time")
        time.sleep(0.5)


def start_stack(
    s: Settings, stack: Stack, symbols: Sequence[str], say: Callable[[str], None]
) -> dict[str, float]:
    """Start the four processes and wait for each; returns seconds to ready per component."""
    t0 = time.monotonic()
    deadline = t0 + s.start_timeout_s
    took: dict[str, float] = {}
    stack.start(
        EXCHANGE,
        [
            str(BIN / "orderbook-pipeline"),
            "simulate",
            "--venue",
            VENUE,
            "--port",
            str(stack.sim_port),
            "--symbols",
            ",".join(symbols),
        ],
    )
    stack.start(
        CODE_SERVER,
        [
            str(BIN / "dagster"),
            "code-server",
            "start",
            "-m",
            "orderbook_pipeline.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(stack.grpc_port),
            "--location-name",
            LOCATION,
        ],
    )
    # The sent log answers only once the exchange's loop runs (as benchmarks.live waits).
    _wait(
        "the exchange", lambda: fetch_sent(stack.rest_url, symbols[0]) is not None, stack, deadline
    )
    took[EXCHANGE] = time.monotonic() - t0
    say(f"exchange up on :{stack.sim_port} after {took[EXCHANGE]:.1f} s")

    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=stack.grpc_port, host="127.0.0.1")
    # list_repositories answers once the location has loaded (ping answers from the proxy).
    _wait("the code server", lambda: "Error" not in client.list_repositories(), stack, deadline)
    took[CODE_SERVER] = time.monotonic() - t0
    say(f"code server up on :{stack.grpc_port} after {took[CODE_SERVER]:.1f} s")

    ws = str(stack.workspace)
    stack.start(DAEMON, [str(BIN / "dagster-daemon"), "run", "-w", ws])
    stack.start(
        WEBSERVER,
        [str(BIN / "dagster-webserver"), "-w", ws, "-h", "127.0.0.1", "-p", str(stack.ui_port)],
    )
    with httpx.Client(timeout=10) as ui:

        def webserver_ready() -> bool:
            if ui.get(f"{stack.ui_url}/server_info").status_code != 200:
                return False
            body = graphql(ui, stack.ui_url, UI_QUERIES["catalog"])
            return bool((body.get("data") or {}).get("assetNodes"))  # the location has loaded

        _wait("the webserver", webserver_ready, stack, deadline)
    took[WEBSERVER] = time.monotonic() - t0
    say(f"webserver up on :{stack.ui_port} after {took[WEBSERVER]:.1f} s")
    return took


def wait_daemon(
    instance: Any, stack: Stack, deadline: float, t0: float, took: dict[str, float]
) -> None:
    """The daemon is up once its sensor and run-queue daemons have sent a heartbeat."""

    def ready() -> bool:
        beats = instance.get_daemon_heartbeats()
        return {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(beats)

    _wait("the daemon", ready, stack, deadline)
    took[DAEMON] = time.monotonic() - t0


@dataclass
class StopResult:
    seconds: float | None  # SIGINT until every marked process was gone; None: not all went
    left_at_target: list[str]  # still running STOP_TARGET_S after the SIGINT
    termed: list[str]  # still running GRACE_S after the SIGINT: SIGTERMed, as run.sh does
    killed: list[str]  # still running 1 s after that: SIGKILLed, as run.sh does


GRACE_S = 7.0  # scripts/run.sh's GRACE_S: SIGINT, SIGTERM after it, SIGKILL 1 s later


def _describe(pids: list[int]) -> list[str]:
    return [f"{pid} {' '.join(cmdline(pid))[:100]}" for pid in pids]


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_stack(stack: Stack, timeout_s: float) -> StopResult:
    """Stop as scripts/run.sh stops on Ctrl-C: the runs in flight canceled through the UI, then
    SIGINT to each process group; whatever carries the marker GRACE_S later gets SIGTERM, and
    SIGKILL 1 s after that."""
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "orderbook_pipeline.cancel_runs", stack.ui_url],
        cwd=ROOT,
        env=stack.env,
        check=False,
        timeout=30,
    )
    stack.interrupt()
    left_at_target: list[str] | None = None
    termed: list[str] = []
    killed: list[str] = []
    while True:
        for proc in stack.procs.values():
            proc.poll()  # reap our own children: a zombie is gone, but only once reaped
        left = marked_pids(stack.marker)
        elapsed = time.monotonic() - t0
        if not left:
            return StopResult(elapsed, left_at_target or [], termed, killed)
        if left_at_target is None and elapsed >= STOP_TARGET_S:
            left_at_target = _describe(left)
        if not termed and elapsed >= GRACE_S:
            termed = _describe(left)
            _signal(left, signal.SIGTERM)
        elif termed and not killed and elapsed >= GRACE_S + 1:
            killed = _describe(left)
            _signal(left, signal.SIGKILL)
        if elapsed > timeout_s:
            return StopResult(None, left_at_target or [], termed, killed + stack.kill_leftovers())
        time.sleep(0.1)


def graphql(client: httpx.Client, url: str, query: str) -> dict[str, Any]:
    resp = client.post(f"{url}/graphql", json={"query": query})
    body: dict[str, Any] = resp.json()
    return body
