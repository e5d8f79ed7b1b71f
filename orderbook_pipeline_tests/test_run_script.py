"""`scripts/run.sh` end to end, as `make run` starts it: Ctrl-C or SIGTERM stops everything.

The script starts the bundled exchange and `dagster dev` (webserver, daemon, code servers, run
and step workers). Each test waits until a capture burst is running, signals the script as a
terminal's Ctrl-C or `kill` would, and requires every process of the run to be gone within
10 s, the running burst to have ended as the CLI's does (a successful run, no temporary left)
and no run to have failed while doing its work. The processes are found by the temporary OBP_HOME, which all of
them inherit. Loopback only; 30-40 s each, most of it `dagster dev` starting.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from orderbook_pipeline.storage.layout import TEMP_MARK
from orderbook_pipeline_tests.ports import free_ports

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run.sh"
START_BUDGET_S = 120.0  # until a capture run is in progress; 2 busy cores start Dagster slowly
STOP_BUDGET_S = 10.0  # the requirement: everything gone this long after the signal

RUNS_QUERY = """
query {
  runsOrError(filter: {statuses: [STARTED], pipelineName: "capture_job"}) {
    ... on Runs { results { runId } }
  }
}
"""


def _env_file_settings() -> list[str]:
    """The variables set by the repository's .env (run.sh and Dagster let it override ours)."""
    path = REPO / ".env"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]


pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.skipif(
        bool(_env_file_settings()), reason=f"{REPO / '.env'} would override the test's settings"
    ),
    # Slow (30-40 s each) but in the normal suite; the bound is the start budget plus
    # the stop budget plus the cleanup, well under the suite's default timeout.
    pytest.mark.timeout(200),
]


def _run_processes(home: Path) -> dict[int, str]:
    """pid -> command line of every live process of the run under `home` (except this one)."""
    needle = os.fsencode(home)
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            try:
                cwd = os.fsencode(os.readlink(entry / "cwd"))
            except OSError:
                cwd = b""
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # A zombie has neither environment nor command line: it is dead already.
        if needle in environ or needle in cmdline or cwd.startswith(needle):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _tail(log: Path, lines: int = 60) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n--- run.sh output (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    home: Path
    log: Path
    ui_port: int


def _capture_in_progress(run: Run) -> bool:
    """A capture run is STARTED in Dagster and has begun writing bronze files."""
    bronze = run.home / "bronze"
    if not bronze.is_dir() or not any(p.is_file() for p in bronze.rglob("*")):
        return False
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.ui_port}/graphql",
        data=json.dumps({"query": RUNS_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.load(response)
    results = (body.get("data") or {}).get("runsOrError", {}).get("results", [])
    return bool(results)


def _wait_for_capture(run: Run) -> None:
    deadline = time.monotonic() + START_BUDGET_S
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            pytest.fail(f"run.sh exited early with {run.proc.returncode}" + _tail(run.log))
        try:
            if _capture_in_progress(run):
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass  # the UI is not up yet
        time.sleep(1.0)
    pytest.fail(f"no capture run in progress after {START_BUDGET_S:.0f} s" + _tail(run.log))


@pytest.fixture
def run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Run]:
    """scripts/run.sh leading its own process group, with its data under tmp_path; with
    param True, started as `./scripts/run.sh &` from a script starts it: SIGINT ignored."""
    sigint_ignored = bool(getattr(request, "param", False))
    home = tmp_path / "obp_home"
    log = tmp_path / "run.log"
    ui_port, sim_port = free_ports(2)
    # As a newcomer starts it: the repository's configuration, nothing from this shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBP_", "DAGSTER_"))}
    env |= {
        "OBP_HOME": str(home),
        "DAGSTER_HOME": str(home / ".dagster"),
        "OBP_UI_PORT": str(ui_port),
        "OBP__VENUES__BINANCE_SPOT__SIM_PORT": str(sim_port),
        "OBP__CAPTURE__BURST_SECONDS": "30",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", 'trap "" INT QUIT; exec "$0"', str(SCRIPT)]
            if sigint_ignored
            else [str(SCRIPT)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Run(proc=proc, home=home, log=log, ui_port=ui_port)
    finally:
        # Never leak a process, whatever failed.
        if proc.poll() is None:
            proc.kill()
        for pid in _run_processes(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("run", "how", "expected_status"),
    [
        pytest.param(False, "ctrl-c", 130, id="ctrl-c-to-the-process-group"),
        pytest.param(False, "sigterm", 143, id="sigterm-to-the-script"),
        pytest.param(True, "sigint", 130, id="sigint-to-a-script-started-in-the-background"),
    ],
    indirect=["run"],
)
def test_signal_stops_every_process(run: Run, how: str, expected_status: int) -> None:
    _wait_for_capture(run)
    before = _run_processes(run.home)
    assert any("dagster dev" in cmd for cmd in before.values()), before

    start = time.monotonic()
    if how == "ctrl-c":
        # What a terminal's Ctrl-C does: SIGINT to the foreground process group, which the
        # script leads here.
        os.killpg(run.proc.pid, signal.SIGINT)
    elif how == "sigint":
        run.proc.send_signal(signal.SIGINT)
    else:
        run.proc.send_signal(signal.SIGTERM)
    left = before
    while time.monotonic() - start < STOP_BUDGET_S:
        left = _run_processes(run.home)
        if run.proc.poll() is not None and not left:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    print(f"{how}: {len(before)} processes stopped in {elapsed:.2f} s")

    listing = "\n".join(f"{pid}: {cmd}" for pid, cmd in sorted(left.items()))
    assert run.proc.poll() is not None, "run.sh still running" + _tail(run.log)
    assert not left, f"still running after {elapsed:.1f} s:\n{listing}" + _tail(run.log)
    assert run.proc.returncode == expected_status, _tail(run.log)

    # The burst that was running ended as the CLI's does: a successful run, every file final.
    # A run the stop reached inside its work was not failed by it (a refresh is canceled);
    # only one that Dagster itself was still starting can end interrupted.
    runs = _runs(run.home / ".dagster")
    assert ("capture_job", "SUCCESS") in {(job, status) for job, status, _ in runs}, runs
    failed_at_work = [(job, status) for job, status, began in runs if status == "FAILURE" and began]
    assert not failed_at_work, (runs, _tail(run.log))
    temporaries = [p for p in (run.home / "bronze").rglob("*") if TEMP_MARK in p.name]
    assert not temporaries, temporaries


def _runs(dagster_home: Path) -> list[tuple[str, str, bool]]:
    """(job, status, whether its step had started) of every run the instance left behind."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        with dg.DagsterInstance.get() as instance:
            return [
                (
                    r.job_name,
                    r.status.value,
                    bool(
                        instance.get_records_for_run(
                            r.run_id, of_type=dg.DagsterEventType.STEP_START
                        ).records
                    ),
                )
                for r in instance.get_runs()
            ]
