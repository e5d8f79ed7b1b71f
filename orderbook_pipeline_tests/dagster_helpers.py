"""Building the Dagster definitions of a test configuration, and running the refresh of an
hour in process, as the refresh sensor's runs do."""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from orderbook_pipeline.config import PipelineConfig, validated
from orderbook_pipeline.definitions import REFRESH_JOB, build_definitions
from orderbook_pipeline.partitions import hour_key

START = "2026-01-01-00:00"  # before every hour the tests use (bronze_factory.T0 is its start)


def pipeline_config(
    root: str,
    duckdb_path: str,
    venues: dict[str, dict[str, Any]] | None = None,
    **top: Any,
) -> PipelineConfig:
    """A validated configuration: the lake at `root`, the marts in `duckdb_path`, the bundled
    exchange, partitions from START; `venues` as in orderbook_pipeline.yaml (default: spot
    BTCUSDT), other top-level sections as keyword arguments."""
    raw: dict[str, Any] = {
        "exchange": "embedded",
        "data_root": root,
        "duckdb_path": duckdb_path,
        "venues": venues or {"binance-spot": {"symbols": ["BTCUSDT"]}},
        **top,
    }
    raw.setdefault("orchestration", {}).setdefault("partitions_start", START)
    return validated(raw, source="the test")


def definitions(config: PipelineConfig) -> dg.Definitions:
    return build_definitions(config)


def utc(us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us / 1e6))


def refresh(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    hour: str | int,
    until: str = "hour_end",
    selection: list[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    """One refresh run of `hour` (a key, or its start in µs) in process; `until` as the refresh
    config takes it ("" = what has settled now, "hour_end", or a UTC time)."""
    key = hour if isinstance(hour, str) else hour_key(hour)
    job = defs.resolve_job_def(REFRESH_JOB)
    return job.execute_in_process(
        instance=instance,
        partition_key=key,
        run_config={"ops": {"hourly_refresh": {"config": {"until": until}}}},
        asset_selection=selection,
        raise_on_error=False,
    )


def evaluations(
    result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance | None = None
) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """The run's check evaluations by (asset key's last part, check name). Of a failed run,
    pass the instance: what its step logged before failing is stored there, not in `result`."""
    if instance is None:
        found = list(result.get_asset_check_evaluations())
    else:
        records = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        found = [r.event_log_entry.get_dagster_event().event_specific_data for r in records]
    return {(e.asset_key.path[-1], e.check_name): e for e in found}


def materializations(
    result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance | None = None
) -> dict[str, dg.AssetMaterialization]:
    """The run's materializations by asset key ("silver/l2", "gold/mart_l2_5s", ...); bronze
    keys appear only for a closed hour. Of a failed run, pass the instance (see evaluations)."""
    if instance is None:
        found = [e.materialization for e in result.get_asset_materialization_events()]
    else:
        records = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        found = [r.event_log_entry.asset_materialization for r in records]
    return {m.asset_key.to_user_string(): m for m in found if m is not None}


def report_failed_check(
    instance: dg.DagsterInstance,
    hour: str,
    failed: dict[str, dict[str, str]],
    name: str = "sequence_continuity",
    description: str | None = None,
) -> None:
    """A failed evaluation of check `name` for `hour`, by a run of its own, naming its failing
    streams as the refresh does (venue -> symbol -> signature)."""
    from orderbook_pipeline.jobs import capture_job

    asset = "book_mismatches" if name == "book_verified" else "gap_windows"
    run = instance.create_run_for_job(job_def=capture_job, status=dg.DagsterRunStatus.SUCCESS)
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(["silver", asset]),
        check_name=name,
        passed=False,
        description=description,
        metadata={"failed_streams": dg.MetadataValue.json(failed)},
        partition=hour,
    )
    instance.report_dagster_event(
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
            job_name=capture_job.name,
            event_specific_data=evaluation,
        ),
        run.run_id,
    )
