"""A burst killed with SIGKILL leaves only complete, readable files under final names; the next
burst recovers the killed one's flushed records from its temporaries and removes them."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import fastavro

from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.cli_capture import sim_capture_command, temporaries

from .conftest import capture
from .truth import verify_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTHS = (5, 20)


def _finals(root: Path) -> list[Path]:
    return sorted(root.rglob("*.avro"))


def test_sigkill_then_next_burst_salvages(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    root = tmp_path / "data"
    args = ["--symbols", ",".join(SYMBOLS), "--duration", "120", "--depths", "5,20"]
    # Files live longer than the 1 s flush interval: live temporaries hold flushed blocks.
    args += ["--file-seconds", "3"]
    cmd = sim_capture_command(sim, root, *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        # Wait until files have rolled at least once and newer ones are being written.
        while time.monotonic() < deadline and not (_finals(root) and temporaries(root)):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.1)
        time.sleep(1.6)  # mid-file (files live 3 s), after at least one 1 s block flush
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    finals, temps = _finals(root), temporaries(root)
    assert finals and temps, "the kill must have left both published files and temporaries"
    for path in finals:
        with path.open("rb") as fo:
            assert list(fastavro.reader(fo)), f"{path} is empty or unreadable"
    store = open_store(str(root))
    verify_capture(sim, store, BINANCE_SPOT, SYMBOLS, DEPTHS)
    records_before = sum(
        1 for p in finals if "/l2/" in str(p) for _ in fastavro.reader(p.open("rb"))
    )

    summary = capture(sim, str(root), BINANCE_SPOT, SYMBOLS, duration_s=2.0)
    assert summary["salvaged"]["files"] >= 1 and summary["salvaged"]["records"] >= 1
    assert temporaries(root) == []
    for path in _finals(root):
        with path.open("rb") as fo:
            list(fastavro.reader(fo))
    seen = verify_capture(sim, store, BINANCE_SPOT, SYMBOLS, DEPTHS)
    killed_burst = {r["burst_id"] for recs in seen.records.values() for r in recs} - {
        summary["burst_id"]
    }
    assert len(killed_burst) == 1
    records_killed = sum(
        1 for recs in seen.records.values() for r in recs if r["burst_id"] in killed_burst
    )
    assert records_killed > records_before, "salvage recovered the killed burst's flushed records"
