"""The klines asset backfilled the way the UI does it, against the bundled exchange.

The backfill is launched with the UI's GraphQL mutation (launchPartitionBackfill) and carried
out by the backfill daemon's own iteration, which submits one run per hour × stream partition;
runs execute synchronously in this process (in-process executor: the default multiprocess one
costs ~5 s of interpreter start-up per run and tests nothing of ours).
"""

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
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

from orderbook_pipeline.assets.klines import BRONZE_KLINES, bronze_klines
from orderbook_pipeline.capture.klines import decode_klines, kline_file
from orderbook_pipeline.core.klines import HOUR_MS
from orderbook_pipeline.partitions import hour_start_of, split_partition_key
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.simulator.klines import KlineQuery, KlineSource
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.layout import burst_id_of
from orderbook_pipeline.storage.reader import iter_lane_records
from orderbook_pipeline.venues import BINANCE_SPOT

SEED = 7
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HOURS = ["2026-11-03-10:00", "2026-11-03-11:00", "2026-11-03-12:00"]
INTERVALS = {"1m": 60, "15m": 4, "1h": 1}
ALL_HOURLY = ["1m", "3m", "5m", "15m", "30m", "1h"]
_ENV = "OBP_TEST_KLINES"  # prefix of the variables the code location below is built from


def _target() -> CaptureTarget:
    return CaptureTarget(
        venue="binance-spot",
        symbols=SYMBOLS,
        sim_port=int(os.environ[f"{_ENV}_PORT"]),
        data_root=os.environ[f"{_ENV}_ROOT"],
        kline_intervals=os.environ[f"{_ENV}_INTERVALS"].split(","),
    )


@dg.definitions
def klines_location() -> dg.Definitions:
    """The code location the test workspace loads (as `dagster dev` loads definitions.py)."""
    return dg.Definitions(
        assets=[bronze_klines],
        resources={"capture_target": _target()},
        executor=dg.in_process_executor,
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
def harness(tmp_path, monkeypatch) -> Iterator[Any]:
    def start(intervals: list[str], **sim_kw: Any) -> tuple[Harness, SimulatorThread, Any]:
        sim = SimulatorThread(BINANCE_SPOT, SYMBOLS, seed=SEED, **sim_kw)
        stack.append(sim.__enter__())
        monkeypatch.setenv(f"{_ENV}_PORT", str(sim.port))
        monkeypatch.setenv(f"{_ENV}_ROOT", str(tmp_path / "lake"))
        monkeypatch.setenv(f"{_ENV}_INTERVALS", ",".join(intervals))
        # Runs load the location through a process-wide cache of the last definitions loaded
        # (lru_cache on ReconstructableJob): drop the previous test's, built for its exchange.
        ReconstructableJob.get_repository_definition.cache_clear()
        ReconstructableJob.get_definition.cache_clear()
        instance = dg.instance_for_test(
            synchronous_run_coordinator=True, synchronous_run_launcher=True
        )
        inst = instance.__enter__()
        stack.append(instance)
        inst.add_dynamic_partitions("streams", [f"binance-spot.{s}" for s in SYMBOLS])
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name=__name__, attribute="klines_location"),
            location_name="klines_test",
        )
        workspace = create_test_daemon_workspace_context(
            InProcessTestWorkspaceLoadTarget(origin), inst
        )
        stack.append(workspace)
        return Harness(inst, workspace.__enter__()), sim, _target().store()

    stack: list[Any] = []
    yield start
    for item in reversed(stack):
        item.__exit__(None, None, None)


def _keys(hours: list[str], symbols: list[str]) -> list[str]:
    return [f"{h}|binance-spot.{s}" for h in hours for s in symbols]


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


def _metadata(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> dict[str, Any]:
    """Materialization metadata of each run's partition."""
    out = {}
    for run in runs:
        (record,) = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        mat = record.asset_materialization
        assert mat is not None
        out[mat.partition] = {k: v.value for k, v in mat.metadata.items()}
    return out


def test_backfill_of_three_hours_two_symbols_then_again_without_duplicates(harness):
    h, _sim, store = harness(list(INTERVALS))
    keys = _keys(HOURS, SYMBOLS)

    status, runs = h.backfill(keys)
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(keys)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    meta = _metadata(h.instance, runs)
    for key in keys:
        assert meta[key]["rows"] == meta[key]["expected_rows"] == 65
        assert meta[key]["missing"] == 0
        assert (meta[key]["requests"], meta[key]["weight_used"]) == (3, 6)  # one per interval
    assert set(h.instance.get_materialized_partitions(BRONZE_KLINES)) == set(keys)

    files = store.list_files("bronze/klines/")
    assert len(files) == len(keys) * len(INTERVALS)  # one file per (hour, stream, interval)
    first = {f: store.read_bytes(f) for f in files}
    for key in keys:
        venue, symbol, hour_us = split_partition_key(key)
        hour_ms = hour_us // 1000
        for interval, count in INTERVALS.items():
            path = kline_file(venue, symbol, hour_ms, interval)
            assert burst_id_of(path) == f"klines-{interval}"
            records = decode_klines(first[path])
            assert len(records) == count
            assert _as_rows(records) == [r[:11] for r in _truth(symbol, interval, hour_ms)]
            assert records[0]["open_ts"] == hour_start_of(key.split("|")[0])

    # The same backfill again: same files, byte for byte, and nothing new for a reader.
    status, again = h.backfill(keys)
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    assert {r.status for r in again} == {dg.DagsterRunStatus.SUCCESS}
    assert len(again) == len(keys)
    for m in _metadata(h.instance, again).values():
        assert m["rows"] == 65 and m["missing"] == 0
        assert {i["file"] for i in m["intervals"].values()} == {"unchanged"}
    assert {f: store.read_bytes(f) for f in store.list_files("bronze/klines/")} == first
    seen = Counter(
        (r["symbol"], r["interval"], r["open_ts"]) for r in iter_lane_records(store, "klines")
    )
    assert len(seen) == len(keys) * 65 and set(seen.values()) == {1}


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
    h, sim, store = harness(ALL_HOURLY, weight_limit_1m=8)
    sim.exchange.clock = _MinuteEndsSoon()
    keys = _keys(HOURS[:1], SYMBOLS[:1])

    status, runs = h.backfill(keys)
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    m = _metadata(h.instance, runs)[keys[0]]
    assert m["rate_limited"] >= 1  # refused once the minute's 8 were spent, then waited out
    assert (m["rows"], m["missing"], m["requests"]) == (60 + 20 + 12 + 4 + 2 + 1, 0, 6)
    assert len(store.list_files("bronze/klines/")) == len(ALL_HOURLY)


def test_unknown_symbol_unconfigured_venue_and_http_errors_fail_the_partition(harness):
    h, sim, store = harness(["1m"])
    h.instance.add_dynamic_partitions("streams", ["binance-spot.NOPEUSDT", "binance-usdm.BTCUSDT"])
    resources = {"capture_target": _target()}

    def materialize(key: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [bronze_klines],
            partition_key=key,
            instance=h.instance,
            resources=resources,
            raise_on_error=False,
        )

    def failure(result: dg.ExecuteInProcessResult) -> str:
        assert not result.success
        error = result.failure_data_for_node("bronze__klines").error
        return "\n".join(e.message for e in (error, error.cause) if e is not None)

    assert "Invalid symbol" in failure(materialize(f"{HOURS[0]}|binance-spot.NOPEUSDT"))
    assert "binance-usdm" in failure(materialize(f"{HOURS[0]}|binance-usdm.BTCUSDT"))
    sim.inject("rate_limit", count=1, status=403)
    assert "HTTP 403" in failure(materialize(f"{HOURS[0]}|binance-spot.BTCUSDT"))
    assert store.list_files("bronze/") == []
