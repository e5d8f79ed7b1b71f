"""One measured burst: the exchange and the capture run, sampled, and read back."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.live.bronze import read_bronze
from benchmarks.live.drops import count_drops, fetch_sent
from benchmarks.live.processes import (
    _capture_cmd,
    _start_simulator,
    _tail,
    _terminate,
    _wait4_nohang,
)
from benchmarks.live.profile import ProfileTop, _pyspy, parse_raw_profile
from benchmarks.live.results import LiveRun
from benchmarks.live.sampling import Sample, cpu_percent, read_machine, read_proc
from benchmarks.live.settings import ROOT, LiveSettings, symbol_names


def measure(settings: LiveSettings, log: Any = None) -> LiveRun:
    """Run the exchange and one capture burst, sample both, and count drops from outside."""
    s = settings
    say = log or (lambda msg: print(f"[live] {msg}", file=sys.stderr, flush=True))
    symbols = symbol_names(s.symbols)
    work = Path(tempfile.mkdtemp(prefix="obp-live-"))
    data_root = s.keep_dir or work / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    sim: subprocess.Popen[bytes] | None = None
    cap: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        say(f"starting the exchange: {len(symbols)} symbols, {s.levels} levels, {s.interval_ms} ms")
        sim, url, sim_start_s = _start_simulator(s, symbols, work)
        say(f"exchange ready at {url} after {sim_start_s:.1f} s; capture for {s.duration_s:.0f} s")

        out_path, err_path = work / "capture.out", work / "capture.log"
        # The production shape (UTC start, random suffix); named here so that only this
        # burst's files are read back from a kept data root.
        burst_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start_us = time.time_ns() // 1000
            t0 = time.monotonic()
            cap = subprocess.Popen(
                _capture_cmd(s, symbols, url, data_root, burst_id), cwd=ROOT, stdout=out, stderr=err
            )
        capture: list[Sample] = []
        simulator: list[Sample] = []
        pyspy: list[Sample] = []
        machine: list[Sample] = []
        raw_profile = work / "pyspy.txt"
        spy_window = (s.steady_after_s, s.duration_s - 3.0)
        next_t, exited = 0.0, None
        while exited is None:
            t = time.monotonic() - t0
            for pid, sink in ((cap.pid, capture), (sim.pid, simulator)):
                if (x := read_proc(pid, t)) is not None:
                    sink.append(x)
            if spy is not None and (x := read_proc(spy.pid, t)) is not None:
                pyspy.append(x)
            machine.append(read_machine(t))
            if (
                s.profile
                and spy is None
                and spy_window[1] - spy_window[0] >= 5
                and t >= spy_window[0]
            ):
                with (work / "pyspy.log").open("wb") as spy_log:
                    spy = subprocess.Popen(
                        [
                            _pyspy(),
                            "record",
                            "--pid",
                            str(cap.pid),
                            "--duration",
                            str(int(spy_window[1] - spy_window[0])),
                            "--rate",
                            str(s.profile_rate),
                            "--nonblocking",  # never pause the capture: its lag is under test
                            "--function",
                            "--format",
                            "raw",
                            "-o",
                            str(raw_profile),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=spy_log,
                    )
                say(f"py-spy attached to the capture for {int(spy_window[1] - spy_window[0])} s")
            exited = _wait4_nohang(cap.pid)
            if exited is None:
                next_t += 1.0
                time.sleep(max(0.0, next_t - (time.monotonic() - t0)))
            if time.monotonic() - t0 > s.duration_s + 120:
                raise TimeoutError(f"the capture did not end:\n{_tail(err_path)}")
        wall_s = time.monotonic() - t0
        status, usage = exited
        cap.returncode = os.waitstatus_to_exitcode(status)
        if cap.returncode != 0:
            raise RuntimeError(
                f"the capture failed ({cap.returncode}):\n{_tail(err_path)}\n{_tail(out_path)}"
            )
        lines = [ln for ln in out_path.read_text().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"the capture printed no summary:\n{_tail(err_path)}")
        summary = json.loads(lines[-1])
        say(f"capture done in {wall_s:.1f} s: {summary.get('events')} events; reading bronze")

        profile = None
        if spy is not None:
            spy.wait(30)
            if raw_profile.exists():
                counts = parse_raw_profile(raw_profile.read_text())
                profile = ProfileTop(
                    samples=counts.samples,
                    window=spy_window,
                    rate=s.profile_rate,
                    own=counts.own,
                    inclusive=counts.inclusive,
                    packages=counts.packages,
                    cpu_percent=cpu_percent(pyspy, 0, wall_s),
                )
            else:
                say(f"py-spy wrote nothing:\n{_tail(work / 'pyspy.log')}")

        # The exchange keeps running (with no subscriber its sent log no longer grows).
        bronze = read_bronze(data_root, symbols, burst_id)
        drops = {sym: count_drops(fetch_sent(url, sym), bronze[sym].ids) for sym in symbols}
        return LiveRun(
            settings=s,
            symbols=symbols,
            summary=summary,
            wall_s=wall_s,
            rusage_cpu_s=usage.ru_utime + usage.ru_stime,
            rusage_maxrss_kb=usage.ru_maxrss,
            capture=capture,
            simulator=simulator,
            pyspy=pyspy,
            machine=machine,
            bronze=bronze,
            drops=drops,
            start_us=start_us,
            simulator_start_s=sim_start_s,
            profile=profile,
        )
    finally:
        _terminate(spy)
        _terminate(cap)
        _terminate(sim)
        if s.keep_dir is not None:  # logs and the raw profile next to the kept data
            for name in ("simulator.log", "capture.log", "capture.out", "pyspy.txt", "pyspy.log"):
                if (work / name).exists():
                    shutil.copy2(work / name, s.keep_dir / name)
        shutil.rmtree(work, ignore_errors=True)


def figures(
    quick: bool = False,
    *,
    symbols: int | None = None,
    duration_s: float | None = None,
    snapshot_limit: int | None = None,
    profile: bool = False,
    lanes: str | None = None,
    run_out: list[LiveRun] | None = None,
) -> list[dict[str, Any]]:
    """The live figures (benchmarks/run.py calls figures(quick)); run_out receives the run."""
    settings = LiveSettings.for_mode(
        quick,
        symbols=symbols,
        duration_s=duration_s,
        snapshot_limit=snapshot_limit,
        profile=profile or None,
        lanes=lanes,
    )
    run = measure(settings)
    if run_out is not None:
        run_out.append(run)
    return run.figures()


def every_lane_figures(quick: bool = False) -> list[dict[str, Any]]:
    """The live figures with every lane (benchmarks/run.py's second live run)."""
    return figures(quick, lanes="all")
