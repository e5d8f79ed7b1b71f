"""The klines asset backfilled the way the UI does it, against the bundled exchange.

The backfill is launched with the UI's GraphQL mutation (launchPartitionBackfill) and carried
out by the backfill daemon's own iteration. The asset's single-run backfill policy makes a range
of hours ONE run, fetching every configured stream of every hour of the range; runs execute
synchronously in this process (in-process executor: the default multiprocess one costs ~5 s of
interpreter start-up per run and tests nothing of ours).
"""

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import (
    InProcessTestWorkspaceLoadTarget,
    create_test_daemon_workspace_context,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from orderbook_pipeline.assets.klines import BRONZE_KLINES, build_klines_asset
from orderbook_pipeline.capture.klines import decode_klines, kline_file
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.core.klines import HOUR_MS
from orderbook_pipeline.partitions import hour_start_of, hourly_partitions
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.simulator.klines import KlineQuery, KlineSource
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.layout import burst_id_of
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT

from .dagster_helpers import START, definitions, pipeline_config

SEED = 7
VENUE = BINANCE_SPOT.name
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HOURS = ["2026-11-03-10:00", "2026-11-03-11:00", "2026-11-03-12:00"]
INTERVALS = {"1m": 60, "15m": 4, "1h": 1}
PER_HOUR = sum(INTERVALS.values())  # klines of one stream's hour: 65
ALL_HOURLY = ["1m", "3m", "5m", "15m", "30m", "1h"]
_ENV = "OBP_TEST_KLINES"  # prefix of the variables the code location below is built from


def _config(symbols: list[str] | None = None) -> PipelineConfig:
    """The configuration of the test's deployment: spot on the bundled exchange."""
    venue = {
        "symbols": symbols or os.environ[f"{_ENV}_SYMBOLS"].split(","),
        "kline_intervals": os.environ[f"{_ENV}_INTERVALS"].split(","),
        "sim_port": int(os.environ[f"{_ENV}_PORT"]),
    }
    root = os.environ[f"{_ENV}_ROOT"]
    return pipeline_config(f"{root}/lake", f"{root}/marts.duckdb", {VENUE: venue})


@dg.definitions
def klines_location() -> dg.Definitions:
    """The code location the test workspace loads (as `dagster dev` loads definitions.py): the
    project's definitions of the configuration, run in process."""
    return dg.Definitions.merge(
        definitions(_config()), dg.Definitions(executor=dg.in_process_executor)
    )


class Harness:
    def __init__(self, instance: dg.DagsterInstance, workspace: WorkspaceProcessContext) -> None:
        self.instance = instance
        self.workspace = workspace

    def backfill(self, partition_keys: list[str]) -> tuple[BulkActionStatus, list[dg.DagsterRun]]:
        """Launch a backfill as the UI does and let the daemon carry it out."""
        result = execute_dagster_graphql(
            self.workspace.create_request_context(),
            LAUNCH_PARTITION_BACKFILL_MUTATION,
            {
                "backfillParams": {
                    "partitionNames": partition_keys,
                    "assetSelection": [{"path": BRONZE_KLINES.path}],
                }
            },
        )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        for _ in range(20):
            list(execute_backfill_iteration(self.workspace, logging.getLogger("test-backfill")))
            backfill = self.instance.get_backfill(backfill_id)
            assert backfill is not None
            if backfill.status != BulkActionStatus.REQUESTED:
                break
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        return backfill.status, list(runs)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def start(
        intervals: list[str], symbols: list[str] = SYMBOLS, **sim_kw: Any
    ) -> tuple[Harness, SimulatorThread, Any]:
        sim = SimulatorThread(BINANCE_SPOT, SYMBOLS, seed=SEED, **sim_kw)
        stack.append(sim.__enter__())
        monkeypatch.setenv(f"{_ENV}_PORT", str(sim.port))
        monkeypatch.setenv(f"{_ENV}_ROOT", str(tmp_path))
        monkeypatch.setenv(f"{_ENV}_INTERVALS", ",".join(intervals))
        monkeypatch.setenv(f"{_ENV}_SYMBOLS", ",".join(symbols))
        # Runs load the location through a process-wide cache of the last definitions loaded
        # (lru_cache on ReconstructableJob): drop the previous test's, built for its exchange.
        ReconstructableJob.get_repository_definition.cache_clear()
        ReconstructableJob.get_definition.cache_clear()
        instance = dg.instance_for_test(
            synchronous_run_coordinator=True, synchronous_run_launcher=True
        )
        inst = instance.__enter__()
        stack.append(instance)
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name=__name__, attribute="klines_location"),
            location_name="klines_test",
        )
        workspace = create_test_daemon_workspace_context(
            InProcessTestWorkspaceLoadTarget(origin), inst
        )
        stack.append(workspace)
        return Harness(inst, workspace.__enter__()), sim, open_store(_config().data_root)

    stack: list[Any] = []
    yield start
    for item in reversed(stack):
        item.__exit__(None, None, None)


def _truth(symbol: str, interval: str, hour_ms: int) -> list[list[Any]]:
    """The exchange's final klines of the hour (asked long after they closed)."""
    rows = KlineSource(BINANCE_SPOT, symbol, SEED).klines(
        KlineQuery(interval, hour_ms, hour_ms + HOUR_MS - 1, 1000), hour_ms + 10 * HOUR_MS
    )
    return [r for r in rows if r[0] < hour_ms + HOUR_MS]


def _as_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["open_ts"] // 1000,
            r["open_str"],
            r["high_str"],
            r["low_str"],
            r["close_str"],
            r["volume_str"],
            r["close_ts"] // 1000,
            r["quote_volume_str"],
            r["trades"],
            r["taker_buy_volume_str"],
            r["taker_buy_quote_volume_str"],
        ]
        for r in records
    ]


def _one_run(runs: list[dg.DagsterRun], hours: list[str]) -> dg.DagsterRun:
    """The backfill's only run, covering the whole range of hours."""
    (run,) = runs
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/asset_partition_range_start"] == hours[0]
    assert run.tags["dagster/asset_partition_range_end"] == hours[-1]
    return run


def _metadata(instance: dg.DagsterInstance, run: dg.DagsterRun, hours: list[str]) -> dict[str, Any]:
    """The run's materialization metadata: one materialization per hour of its range, each
    with the run's totals."""
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    mats = [r.asset_materialization for r in records]
    assert sorted(m.partition for m in mats if m is not None) == sorted(hours)
    (meta,) = {
        repr(sorted((k, v.value) for k, v in m.metadata.items())): {
            k: v.value for k, v in m.metadata.items()
        }
        for m in mats
        if m is not None
    }.values()
    return meta


def test_backfill_of_three_hours_two_symbols_then_again_without_duplicates(harness):
    h, _sim, store = harness(list(INTERVALS))
    streams = len(SYMBOLS)

    status, runs = h.backfill(HOURS)
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    run = _one_run(runs, HOURS)
    meta = _metadata(h.instance, run, HOURS)
    assert meta["rows"] == meta["expected_rows"] == PER_HOUR * len(HOURS) * streams
    assert meta["missing"] == 0 and meta["rate_limited"] == 0
    # One request per stream and interval covers the whole range (weight 2 each on spot).
    assert (meta["requests"], meta["weight_used"]) == (streams * 3, streams * 3 * 2)
    assert meta["intervals"] == {
        interval: {
            "rows": n * len(HOURS) * streams,
            "expected": n * len(HOURS) * streams,
            "missing": 0,
            "unclosed": 0,
            "written": len(HOURS) * streams,
        }
        for interval, n in INTERVALS.items()
    }
    assert meta["file_count"] == len(HOURS) * streams * len(INTERVALS)
    assert set(h.instance.get_materialized_partitions(BRONZE_KLINES)) == set(HOURS)

    files = store.list_files("bronze/klines/")
    # one file per (hour, stream, interval)
    assert sorted(files) == sorted(meta["files"])
    assert len(files) == len(HOURS) * streams * len(INTERVALS)
    first = {f: store.read_bytes(f) for f in files}
    for hour in HOURS:
        hour_ms = hour_start_of(hour) // 1000
        for symbol in SYMBOLS:
            for interval, count in INTERVALS.items():
                path = kline_file(VENUE, symbol, hour_ms, interval)
                assert burst_id_of(path) == f"klines-{interval}"
                records = decode_klines(first[path])
                assert len(records) == count
                assert _as_rows(records) == [r[:11] for r in _truth(symbol, interval, hour_ms)]
                assert records[0]["open_ts"] == hour_start_of(hour)
                assert {r["burst_id"] for r in records} == {f"klines-{run.run_id}"}

    # The same backfill again: one run, same files byte for byte, nothing new for a reader.
    status, again = h.backfill(HOURS)
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    rerun = _one_run(again, HOURS)
    assert rerun.run_id != run.run_id
    m = _metadata(h.instance, rerun, HOURS)
    assert m["rows"] == PER_HOUR * len(HOURS) * streams and m["missing"] == 0
    assert {i["written"] for i in m["intervals"].values()} == {0}  # every file unchanged
    assert {f: store.read_bytes(f) for f in store.list_files("bronze/klines/")} == first
    seen = Counter(
        (r["symbol"], r["interval"], r["open_ts"]) for r in iter_lane_records(store, "klines")
    )
    assert len(seen) == len(HOURS) * streams * PER_HOUR and set(seen.values()) == {1}


class _MinuteEndsSoon:
    """Exchange clock for its weight windows: real time, shifted on the first request so that
    request's minute ends 3 s later. The backfill then meets the minute's limit with a 429 whose
    Retry-After is a few seconds, not up to a minute."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def __call__(self) -> float:
        now = time.time()
        if self.offset is None:
            self.offset = 57.0 - now % 60
        return now + self.offset


def test_backfill_completes_under_a_small_weight_limit_honouring_retry_after(harness):
    # Six intervals cost 6 requests of weight 2 an hour; the exchange allows 8 a minute.
    h, sim, store = harness(ALL_HOURLY, SYMBOLS[:1], weight_limit_1m=8)
    sim.exchange.clock = _MinuteEndsSoon()

    status, runs = h.backfill(HOURS[:1])
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    m = _metadata(h.instance, _one_run(runs, HOURS[:1]), HOURS[:1])
    assert m["rate_limited"] >= 1  # refused once the minute's 8 were spent, then waited out
    assert (m["rows"], m["missing"], m["requests"]) == (60 + 20 + 12 + 4 + 2 + 1, 0, 6)
    assert len(store.list_files("bronze/klines/")) == len(ALL_HOURLY)


def test_unknown_symbol_and_http_errors_fail_the_hour(harness):
    h, sim, store = harness(["1m"])
    asset = build_klines_asset(hourly_partitions(START))

    def failure(symbols: list[str]) -> str:
        result = dg.materialize(
            [asset],
            partition_key=HOURS[0],
            instance=h.instance,
            resources={"capture_target": CaptureTarget.from_config(_config(symbols))},
            raise_on_error=False,
        )
        assert not result.success
        error = result.failure_data_for_node("bronze__klines").error
        return "\n".join(e.message for e in (error, error.cause) if e is not None)

    assert "Invalid symbol" in failure(["NOPEUSDT"])
    sim.inject("rate_limit", count=1, status=403)
    assert "HTTP 403" in failure(["BTCUSDT"])
    assert store.list_files("bronze/") == []
    assert not h.instance.get_materialized_partitions(BRONZE_KLINES)
