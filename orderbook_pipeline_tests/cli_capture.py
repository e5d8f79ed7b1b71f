"""`orderbook-pipeline capture` as a process of its own: the command line, its environment, its
one-line JSON summary, and the temporaries a data root still holds.

Plain functions (no pytest), so that probes run in a subprocess (robustness/full_disk_probe.py)
import them too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from orderbook_pipeline.storage.layout import TEMP_MARK

CHECKOUT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "orderbook_pipeline.cli"]


def capture_command(venue: str, root: Path, ws_url: str, rest_url: str, *args: str) -> list[str]:
    """`capture` of `venue` into `root` from the exchange at `ws_url`/`rest_url`, plus `args`."""
    return [
        *CLI,
        "capture",
        "--venue",
        venue,
        "--data-root",
        str(root),
        "--ws-url",
        ws_url,
        "--rest-url",
        rest_url,
        *args,
    ]


def sim_capture_command(sim: Any, root: Path, *args: str) -> list[str]:
    """`capture_command` against the bundled exchange `sim` (a SimulatorThread), as its venue."""
    return capture_command(sim.venue.name, root, sim.ws_url, sim.rest_url, *args)


def cli_env() -> dict[str, str]:
    """No configuration from the developer's environment; this checkout's package first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBP_")}
    env["PYTHONPATH"] = str(CHECKOUT)
    return env


def last_summary(stdout: bytes) -> dict[str, Any] | None:
    """The burst's one-line JSON summary: the last line of stdout that is an object, if any."""
    lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]
    return orjson.loads(lines[-1]) if lines else None


def temporaries(root: Path) -> list[Path]:
    """Everything under `root` still under a temporary name."""
    return [p for p in root.rglob("*") if TEMP_MARK in p.name]


@dataclass
class CliRun:
    code: int
    summary: dict[str, Any] | None  # the one-line JSON summary, if printed
    stderr: str
    seconds: float


def start_cli(sim: Any, root: Path, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        sim_capture_command(sim, root, *args),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], started: float, timeout: float) -> CliRun:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the capture was still running after {timeout} s: {err!r}") from None
    return CliRun(proc.returncode, last_summary(out), err.decode(), time.monotonic() - started)


def run_cli(
    sim: Any,
    root: Path,
    args: list[str],
    *,
    sigterm_after_s: float | None = None,
    timeout: float = 60.0,
) -> CliRun:
    """`orderbook-pipeline capture` against `sim`, as a process of its own; SIGTERM after
    `sigterm_after_s` if given. `seconds` counts from the start (or from the SIGTERM)."""
    started = time.monotonic()
    proc = start_cli(sim, root, args)
    if sigterm_after_s is not None:
        time.sleep(sigterm_after_s)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
    return finish(proc, started, timeout)
