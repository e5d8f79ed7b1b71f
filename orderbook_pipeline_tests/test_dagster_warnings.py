"""Dagster's known preview/beta warnings are silenced once, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orderbook_pipeline.dagster_warnings import KNOWN

ROOT = Path(__file__).resolve().parents[1]


def _load_definitions(prelude: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBP_", "DAGSTER_"))}
    env["PYTHONPATH"] = str(ROOT)
    # Loaded as a code server loads them: the repository resolved (sensors, jobs, checks).
    code = f"{prelude}\nimport orderbook_pipeline.definitions as d\nd.defs.get_repository_def()\n"
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stderr


def test_loading_the_definitions_prints_none_of_the_known_warnings() -> None:
    stderr = _load_definitions("import orderbook_pipeline")
    assert not [message for message, _why in KNOWN if message in stderr]
    assert "Warning" not in stderr, stderr


def test_each_known_warning_is_one_this_dagster_still_emits() -> None:
    """Without the filters every KNOWN warning shows: none of them is stale."""
    prelude = (
        "import warnings, orderbook_pipeline\n"
        "warnings.resetwarnings()\n"
        "warnings.simplefilter('default')"
    )
    stderr = _load_definitions(prelude)
    assert [message for message, _why in KNOWN if message not in stderr] == []


def test_another_warning_still_shows() -> None:
    stderr = _load_definitions("import orderbook_pipeline, warnings\nwarnings.warn('unrelated')")
    assert "UserWarning: unrelated" in stderr
