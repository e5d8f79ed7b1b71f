"""Process classification, the CPU ledger and the marked-process scanner."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from benchmarks.pipeline import processes, settings

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the benchmark samples processes from /proc"
)

L2 = "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-12-02/hour=10/depth=10"
HOUR_START = 1_796_205_600.0  # 2026-12-02 10:00 UTC
HOUR_US = int(HOUR_START * 1e6)


RUN_ID = "0e5b8c4e-2b51-4f7e-9d9e-1a2b3c4d5e6f"


@pytest.mark.parametrize(
    ("argv", "component"),
    [
        (
            ["/v/bin/python", "/v/bin/orderbook-pipeline", "simulate", "--port", "1"],
            settings.EXCHANGE,
        ),
        (
            ["/v/bin/python", "/v/bin/dagster", "code-server", "start", "-m", "x"],
            settings.CODE_SERVER,
        ),
        (
            ["/v/bin/python", "-m", "dagster", "api", "grpc", "--lazy-load-user-code"],
            settings.CODE_SERVER,
        ),
        (["/v/bin/python", "/v/bin/dagster-daemon", "run", "-w", "ws.yaml"], settings.DAEMON),
        (["/v/bin/python", "/v/bin/dagster-webserver", "-w", "ws.yaml"], settings.WEBSERVER),
        (
            [
                "/v/bin/python",
                "-c",
                "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)",
                "--multiprocessing-fork",
            ],
            settings.RUN_WORKER,
        ),
        (["tail", "-F", "-c", "+0", "/h/storage/x/compute_logs/a.out"], settings.OTHER),
    ],
)
def test_classify_names_each_component(argv: list[str], component: str) -> None:
    assert processes.classify(argv).component == component


def test_classify_reads_an_execute_run_command_line() -> None:
    args = (
        '{"__class__": "ExecuteRunArgs", "pipeline_origin": {"__class__": "JobPythonOrigin", '
        f'"pipeline_name": "refresh_job"}}, "pipeline_run_id": "{RUN_ID}"}}'
    )
    role = processes.classify(["/v/bin/python", "-m", "dagster", "api", "execute_run", args])
    assert role == processes.Role(settings.REFRESH_RUNS, RUN_ID, "refresh_job")
    # Without a job name in the arguments, the instance is asked.
    bare = f'{{"pipeline_run_id": "{RUN_ID}"}}'
    role = processes.classify(["dagster", "api", "execute_run", bare], lambda _: "capture_job")
    assert role.component == settings.CAPTURE_RUNS
    assert (
        processes.classify(["dagster", "api", "execute_run", bare]).component == settings.OTHER_RUNS
    )


def _info(
    pid: int, start: int, cpu: float, rss: int = 1024, state: str = "S"
) -> processes.ProcInfo:
    return processes.ProcInfo(pid, 1, start, state, cpu, rss)


def test_ledger_counts_new_processes_from_zero_and_old_ones_from_first_sight() -> None:
    ledger = processes.CpuLedger(window_start_ticks=1_000)
    daemon = processes.Role(settings.DAEMON)
    worker = processes.Role(settings.RUN_WORKER)
    ledger.observe(_info(10, 500, cpu=50.0), daemon)  # running before the window
    ledger.observe(_info(20, 1_500, cpu=2.0), worker)  # born inside it
    ledger.retire({(10, 500), (20, 1_500)})
    ledger.observe(_info(10, 500, cpu=53.0), daemon)
    ledger.observe(_info(20, 1_500, cpu=6.0, state="Z"), worker)  # a zombie: final CPU, no RSS
    ledger.retire({(10, 500), (20, 1_500)})
    ledger.retire({(10, 500)})  # the worker is gone: its last CPU stays counted
    assert ledger.cpu_by_component() == {settings.DAEMON: 3.0, settings.RUN_WORKER: 6.0}
    assert ledger.alive_by_component() == {settings.DAEMON: 1}
    assert ledger.peak_rss_kb[settings.RUN_WORKER] == 1024
    # A reused pid is another process.
    ledger.observe(_info(20, 2_000, cpu=1.0), worker)
    assert ledger.cpu_by_component()[settings.RUN_WORKER] == 7.0
    # The run of a worker found later moves its CPU to the job's component.
    ledger.resolve(lambda pid: (RUN_ID, "refresh_job") if pid == 20 else None)
    assert ledger.cpu_by_component() == {settings.DAEMON: 3.0, settings.REFRESH_RUNS: 7.0}
    assert ledger.cpu_by_run() == {RUN_ID: 7.0}


def test_scanner_finds_marked_processes_and_keeps_a_zombies_role() -> None:
    """A process is found by the marker in its environment; once it exits (a zombie, with no
    command line left) it keeps its role, or its CPU would move to another component."""
    marker = f"{settings.MARKER_VAR}=test-{os.getpid()}"
    env = {**os.environ, settings.MARKER_VAR: marker.split("=", 1)[1]}
    proc = subprocess.Popen(["bash", "-c", "exec -a dagster-daemon sleep 30"], env=env)
    try:
        ledger = processes.CpuLedger(processes.uptime_ticks())
        scanner = processes.ProcScanner(marker, ledger, lambda _: None, lambda _: None)
        deadline = time.monotonic() + 10
        while settings.DAEMON not in ledger.alive_by_component() and time.monotonic() < deadline:
            time.sleep(0.05)  # until bash has exec'd
            scanner.scan()
        assert ledger.alive_by_component() == {settings.DAEMON: 1}
        assert processes.marked_pids(marker) == [proc.pid]
        proc.terminate()
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.05)
        scanner.scan()  # the zombie: no command line, no environment
        assert set(ledger.cpu_by_component()) == {settings.DAEMON}
        assert ledger.alive_by_component() == {}
    finally:
        proc.kill()
        proc.wait()
