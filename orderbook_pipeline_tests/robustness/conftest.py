"""The probe suite: the capture tried as a hostile environment would (issue 11).

Each probe arms a fault of the bundled exchange (or of the disk, S3, the clock, the operator)
and checks that the burst ends on time with every file final, and that the fault is named: a
clear message, a counter in the summary, a non-zero exit where nothing was captured.
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
from orderbook_pipeline_tests.capture.conftest import capture, simulator  # noqa: F401 (fixture)

__all__ = ["CliRun", "capture", "leftover_temporaries", "run_cli", "start_cli"]


@dataclass
class CliRun:
    code: int
    summary: dict[str, Any] | None  # the one-line JSON summary, if printed
    stderr: str
    seconds: float


def _command(sim: Any, root: Path, args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orderbook_pipeline.cli",
        "capture",
        "--venue",
        sim.venue.name,
        "--data-root",
        str(root),
        "--ws-url",
        sim.ws_url,
        "--rest-url",
        sim.rest_url,
        *args,
    ]


def _env() -> dict[str, str]:
    # No configuration from the developer's environment; this checkout's package first.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBP_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def start_cli(sim: Any, root: Path, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _command(sim, root, args), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen[bytes], started: float, timeout: float) -> CliRun:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the capture was still running after {timeout} s: {err!r}") from None
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    summary = orjson.loads(lines[-1]) if lines else None
    return CliRun(proc.returncode, summary, err.decode(), time.monotonic() - started)


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


def leftover_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_MARK in p.name]
