"""A full disk, for real: a 256 KiB tmpfs as the data root, mounted in a mount namespace of the
test's own (no root needed where user namespaces are allowed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from orderbook_pipeline.venues import BINANCE_SPOT


def _namespaces_allowed() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"this machine refuses user and mount namespaces: {probe.stderr.decode().strip()}"
    return None


def test_a_full_tmpfs_stops_the_burst_with_every_file_readable_and_the_next_one_salvages(
    simulator, tmp_path
):
    refused = _namespaces_allowed()
    if refused is not None:
        pytest.skip(refused)
    sim = simulator(BINANCE_SPOT, ["BTCUSDT", "ETHUSDT"])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            sys.executable,
            "-m",
            "orderbook_pipeline_tests.robustness.full_disk_probe",
            str(tmp_path / "data"),
            sim.ws_url,
            sim.rest_url,
        ],
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    report = orjson.loads(proc.stdout.decode().splitlines()[-1])
    full, after_full = report["full"], report["after_full"]
    assert full["code"] == 1, full["stderr"]
    assert "No space left on device" in full["stderr"] or "disk full" in full["stderr"]
    assert full["seconds"] < 25, "the burst stopped when the disk filled, not at its end"
    assert "Traceback" not in full["stderr"]
    assert after_full["finals"] >= 1 and after_full["unreadable"] == []
    again, after = report["again"], report["after"]
    assert again["code"] == 0, again["stderr"]
    assert after_full["temporaries"] and again["summary"]["salvaged"]["files"] >= 1
    assert after["temporaries"] == [] and after["unreadable"] == []
