"""The benchmark harness in quick mode: books cross-checked, every contender measured, and a
contender with a wrong book stops the run before any speed is reported. No timing assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.contenders import PLUGINS_ENV, discover

ROOT = Path(__file__).resolve().parents[2]

# Never applies a diff: its final book is the REST snapshot's, which the window has moved on from.
_WRONG = """
import orjson

from benchmarks.contenders import float_book, summary


def setup(snapshot, history):
    bids, asks, _ = float_book(snapshot)

    def process(msgs):
        for m in msgs:
            orjson.loads(m)
        return summary(sorted(bids.items(), reverse=True)[:20], sorted(asks.items())[:20])

    return process


CONTENDERS = {"wrong stale book": (setup, "ignores every diff (test only)")}
"""


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {**os.environ, "OBP_BENCH_DIR": str(tmp_path_factory.mktemp("obp-bench"))}
    env.pop(PLUGINS_ENV, None)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--skip-live", "--skip-stages", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def test_quick_run_measures_every_contender_on_agreeing_books(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    p = _run(bench_env, "--json", str(out))
    assert p.returncode == 0, p.stderr
    contenders, problems = discover()
    assert not problems
    assert {"orjson parse only", "baseline depth 20", "baseline depths 10,20,50"} <= set(contenders)

    result = json.loads(out.read_text())
    rows = {row["name"]: row for row in result["rows"]}
    assert set(rows) == set(contenders)
    for name, row in rows.items():
        assert not row["errors"], (name, row["errors"])
        assert len(row["rates"]) == 2 and min(row["rates"]) > 0, name
        assert any(line.startswith(f"| {name} | ") for line in p.stdout.splitlines()), name

    # The book contenders (all but parse-only ones) all ended on the same top of book.
    checks = {r["name"]: r["check"] for r in result["calibration"] if r["check"] is not None}
    assert {"baseline depth 20", "baseline depths 10,20,50"} <= set(checks)
    assert len({json.dumps(c[:2]) for c in checks.values()}) == 1
    assert "all agree" in p.stdout
    assert "ours depth 20: ratio vs orjson parse-only >= 0.35" in p.stdout
    # The closing table repeats every target, after the cross-check, with its verdict.
    closing = p.stdout.split("## Every target, after the book cross-check")[1]
    assert p.stdout.index("all agree") < p.stdout.index("## Every target")
    row = next(line for line in closing.splitlines() if line.startswith("| ours depth 20:"))
    assert row.endswith(("| MET |", "| NOT MET |")) and "| >= 0.35 |" in row


def test_a_wrong_book_aborts_before_any_speed_is_reported(
    bench_env: dict[str, str], tmp_path: Path
) -> None:
    plugin = tmp_path / "wrong_contender.py"
    plugin.write_text(_WRONG)
    p = _run({**bench_env, PLUGINS_ENV: str(plugin)}, "--only", "baseline depth 20,wrong")
    assert p.returncode != 0
    assert "CROSS-CHECK FAILED" in p.stderr
    assert "wrong stale book: [" in p.stderr and "baseline depth 20: [" in p.stderr
    assert "events/s" not in p.stdout and "| approach |" not in p.stdout
