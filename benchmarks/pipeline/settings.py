"""Settings of a pipeline benchmark, the components it names, and its statistics."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENUE = "binance-spot"
ROOT = Path(__file__).resolve().parents[2]  # the repository
BIN = Path(sys.executable).parent  # the venv's console scripts, next to its python
LOCATION = "orderbook_pipeline"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARKER_VAR = "OBP_BENCH_SESSION"

# Components: the four processes started here, and the run workers by their run's job.
EXCHANGE = "exchange"
CODE_SERVER = "code server"
DAEMON = "daemon"
WEBSERVER = "webserver"
CAPTURE_RUNS = "capture runs"
REFRESH_RUNS = "refresh runs"
OTHER_RUNS = "other runs"
OTHER = "other"
COMPONENTS = (EXCHANGE, CODE_SERVER, DAEMON, WEBSERVER, CAPTURE_RUNS, REFRESH_RUNS, OTHER_RUNS)
RUN_WORKER = "run workers (unidentified)"  # a run worker whose run is not known yet
RUN_COMPONENTS = {"capture_job": CAPTURE_RUNS, "refresh_job": REFRESH_RUNS}
# The "orchestration": what Dagster costs besides the capture bursts themselves.
ORCHESTRATION = (DAEMON, CODE_SERVER, WEBSERVER, REFRESH_RUNS, OTHER_RUNS)

CLOSED_HOUR_TARGET_S = 300.0
ORCHESTRATION_TARGET_PCT = 50.0
HOME_TARGET_MB_PER_STREAM_DAY = 1.0
UI_TARGET_S = 1.0
STOP_TARGET_S = 10.0
QUEUE_SLACK = 2  # queued runs the last third of a run may hold beyond the earlier maximum

UI_QUERIES = {
    "catalog": "query BenchAssetCatalog { assetNodes { id assetKey { path } groupName "
    "description } }",
    "partitions": "query BenchPartitionStatus { assetNodes { assetKey { path } "
    "assetPartitionStatuses { __typename "
    "... on TimePartitionStatuses { ranges { status startKey endKey } } "
    "... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } }",
}


@dataclass(frozen=True)
class Settings:
    symbols: int = 20
    minutes: float = 8.0
    lanes: str = "l2,diffs"  # "all": every lane the venue publishes
    interval_s: float = 300.0  # orchestration.refresh_interval_seconds
    keep: Path | None = None  # OBP_HOME to use and keep (logs in its logs/)
    sets: tuple[str, ...] = ()  # extra configuration, "dotted.path=value" (as OBP__ variables)
    proc_s: float = 2.0  # /proc sampling of the stack's processes
    lake_s: float = 15.0  # bronze landings and silver states
    sample_s: float = 30.0  # queue, storage, UI latency, one stderr line
    ui_repeats: int = 3  # each UI query, per sample
    start_timeout_s: float = 300.0  # two busy cores start Dagster slowly
    stop_timeout_s: float = 60.0  # then SIGKILL


def env_name(dotted: str) -> str:
    """ "venues.binance-spot.lanes" -> "OBP__VENUES__BINANCE_SPOT__LANES" (the loader's rule)."""
    return "OBP__" + "__".join(p.upper().replace("-", "_") for p in dotted.split("."))


def lanes_value(lanes: str) -> str:
    if lanes != "all":
        return lanes
    from orderbook_pipeline.capture.settings import default_lanes
    from orderbook_pipeline.venues import VENUES

    return ",".join(default_lanes(VENUES[VENUE]))


def stack_env(
    s: Settings, home: Path, symbols: Sequence[str], sim_port: int, marker: str
) -> dict[str, str]:
    """The environment of every process of the stack: a clean slate of OBP_/DAGSTER_ settings
    (a developer's own must not leak in), the repository's configuration file, the overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBP_", "DAGSTER_"))}
    env.update(
        {
            "OBP_HOME": str(home),
            "DAGSTER_HOME": str(home / ".dagster"),
            "OBP_CONFIG": str(ROOT / "orderbook_pipeline.yaml"),
            "PYTHONUNBUFFERED": "1",
            MARKER_VAR: marker,
            env_name(f"venues.{VENUE}.symbols"): ",".join(symbols),
            env_name(f"venues.{VENUE}.lanes"): lanes_value(s.lanes),
            env_name(f"venues.{VENUE}.sim_port"): str(sim_port),
            env_name("orchestration.refresh_interval_seconds"): f"{s.interval_s:g}",
        }
    )
    for assignment in s.sets:
        dotted, sep, value = assignment.partition("=")
        if not sep:
            raise ValueError(f"--set expects PATH=VALUE, got {assignment!r}")
        env[env_name(dotted.strip())] = value.strip()
    return env


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest rank (as benchmarks.live), None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p10": percentile(ordered, 0.10),
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1] if ordered else None,
    }


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"
