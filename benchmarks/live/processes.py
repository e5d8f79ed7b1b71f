"""Starting and stopping the exchange and the capture, and reading their logs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.live.drops import fetch_sent
from benchmarks.live.settings import ROOT, VENUE, LiveSettings

_READY_RE = re.compile(r"ws://127\.0\.0\.1:(\d+)")


def _terminate(proc: subprocess.Popen[Any] | None, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL: nothing this harness started may outlive it."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _start_simulator(
    s: LiveSettings, symbols: list[str], logs: Path
) -> tuple[subprocess.Popen[bytes], str, float]:
    """The exchange on a free loopback port (it binds port 0 and logs the one it got)."""
    log_path = logs / "simulator.log"
    t0 = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "orderbook_pipeline.cli",
        "simulate",
        "--venue",
        VENUE,
        "--port",
        "0",
        "--symbols",
        ",".join(symbols),
        "--interval-ms",
        str(s.interval_ms),
        "--levels",
        str(s.levels),
        "--seed",
        str(s.seed),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
    try:
        while True:
            m = _READY_RE.search(log_path.read_text(errors="replace"))
            if m:
                url = f"http://127.0.0.1:{m.group(1)}"
                fetch_sent(url, symbols[0])  # answers only once the server loop runs
                return proc, url, time.monotonic() - t0
            if proc.poll() is not None:
                raise RuntimeError(f"the exchange exited ({proc.returncode}):\n{_tail(log_path)}")
            if time.monotonic() - t0 > s.start_timeout_s:
                raise TimeoutError(f"the exchange did not start:\n{_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:
        _terminate(proc)
        raise


def _capture_cmd(
    s: LiveSettings, symbols: list[str], url: str, data_root: Path, burst_id: str
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "orderbook_pipeline.cli",
        "capture",
        "--venue",
        VENUE,
        "--symbols",
        ",".join(symbols),
        "--duration",
        str(s.duration_s),
        "--depths",
        s.depths,
        "--data-root",
        str(data_root),
        "--ws-url",
        url.replace("http://", "ws://"),
        "--rest-url",
        url,
        "--burst-id",
        burst_id,
        # The file roll as issue 4 measured it (it follows the configuration since issue 5).
        "--file-seconds",
        "900",
    ]
    if s.lanes != "all":  # every lane the venue feeds is the capture's default
        cmd += ["--lanes", s.lanes]
    if s.snapshot_limit is not None:
        cmd += ["--snapshot-limit", str(s.snapshot_limit)]
    return cmd


def _wait4_nohang(pid: int) -> tuple[int, Any] | None:
    got, status, usage = os.wait4(pid, os.WNOHANG)
    return (status, usage) if got == pid else None
