"""Every derived asset of an hour in one step: silver of every lane, the gap windows, the gold
marts and every check, for all configured streams (refresh/hour.py does the work).

Why one multi-asset: the cost of orchestration then follows the hours, not hours x streams x
assets. A refresh of the hour in progress is one run and one process, every few minutes
(sensors/refresh.py); a backfill of many hours is one run too (single-run backfill policy).
The UI can still materialize any subset (the step does only what is selected).

Per-stream results are in the metadata: each check's evaluation names the failing streams
(table `failures`, and `failed_streams` for the reseed sensor), the gap windows' materialization
has a row per stream. A stream whose stage fails is a failed check, never a missing one, and
the run fails after everything else of the hour has been written and judged.
"""

# No `from __future__ import annotations`: Dagster inspects the context annotation at runtime.
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.keys import GAP_WINDOWS_KEY, bronze_key, mart_key, silver_key
from orderbook_pipeline.assets.refresh_events import hour_events
from orderbook_pipeline.checks.specs import GAP_WINDOWS, checks_on
from orderbook_pipeline.config import PipelineConfig
from orderbook_pipeline.lanes.registry import GAP_INPUT_LANES, LANES
from orderbook_pipeline.partitions import hour_start_of
from orderbook_pipeline.refresh.hour import mart_session, refresh_hour, stop_on_signals
from orderbook_pipeline.refresh.scope import hour_scope, silver_lanes
from orderbook_pipeline.refresh.stream import MARTS, Selection
from orderbook_pipeline.resources import CaptureTarget, MartDuckDB

DUCKDB_POOL = "duckdb"  # every writer of the mart database: one at a time (dagster.yaml)
REFRESH_NAME = "hourly_refresh"


def marts_for(lanes: tuple[str, ...]) -> list[str]:
    return [table for table, mart in MARTS.items() if mart.lane in lanes]


def refresh_specs(
    lanes: tuple[str, ...], partitions: dg.PartitionsDefinition
) -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            silver_key(lane),
            deps=[bronze_key(lane)],
            partitions_def=partitions,
            group_name="silver",
            kinds={"parquet"},
            skippable=True,
            description=f"{LANES[lane].description} One row per ({', '.join(LANES[lane].key)}) "
            "across bursts; zstd Parquet parts, one per refresh of the hour.",
        )
        for lane in lanes
    ]
    specs.append(
        dg.AssetSpec(
            GAP_WINDOWS_KEY,
            deps=[bronze_key(lane) for lane in GAP_INPUT_LANES if lane in lanes],
            partitions_def=partitions,
            group_name="silver",
            kinds={"parquet"},
            skippable=True,
            description="Every loss of book continuity in the hour, with update ids, times and "
            "cause, per stream (derived from bronze, so it never waits for compaction).",
        )
    )
    for table in marts_for(lanes):
        mart = MARTS[table]
        specs.append(
            dg.AssetSpec(
                mart_key(table),
                deps=[silver_key(mart.lane), GAP_WINDOWS_KEY],
                partitions_def=partitions,
                group_name="gold",
                kinds={"duckdb", "parquet"},
                skippable=True,
                description=f"{table}: 5-second buckets of silver {mart.lane}, rebuilt for the "
                "hour on every refresh (has_gap follows the latest gap windows), in the DuckDB "
                "database and as the hour's gold Parquet file (what `orderbook-pipeline sql` "
                "reads).",
            )
        )
    return specs


def check_specs(
    lanes: tuple[str, ...], partitions: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            c.name,
            asset=silver_key(c.asset),
            partitions_def=partitions,
            description=c.description,
            blocking=False,
        )
        for c in checks_on({*lanes, GAP_WINDOWS})
    ]


def selection_of(
    assets: set[dg.AssetKey] | frozenset[dg.AssetKey],
    checks: set[dg.AssetCheckKey] | frozenset[dg.AssetCheckKey],
) -> Selection:
    paths = {tuple(k.path) for k in assets}
    return Selection(
        lanes=frozenset(p[1] for p in paths if p[0] == "silver" and p[1] in LANES),
        gap_windows=tuple(GAP_WINDOWS_KEY.path) in paths,
        marts=frozenset(p[1] for p in paths if p[0] == "gold" and p[1] in MARTS),
        checks=frozenset((k.asset_key.path[-1], k.name) for k in checks),
    )


class RefreshConfig(dg.Config):
    """Up to when to compact and judge: by default what has settled (every copy landed);
    "hour_end" for the whole hour (when no capture writes into it any more, e.g. after a CLI
    capture), or a UTC time "YYYY-MM-DDTHH:MM:SSZ"."""

    until: str = ""


def until_us(config: RefreshConfig, hour_start_us: int) -> int | None:
    if not config.until:
        return None
    if config.until == "hour_end":
        return hour_start_us + 3_600_000_000
    parsed = datetime.strptime(config.until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000


def build_refresh_asset(
    config: PipelineConfig, partitions: dg.TimeWindowPartitionsDefinition
) -> dg.AssetsDefinition:
    lanes = silver_lanes(config)

    @dg.multi_asset(
        name=REFRESH_NAME,
        specs=refresh_specs(lanes, partitions),
        check_specs=check_specs(lanes, partitions),
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        description="Refresh hours of derived data: silver, gap windows, marts and checks of "
        "every configured stream, in one process.",
    )
    def hourly_refresh(
        context: dg.AssetExecutionContext,
        config: RefreshConfig,
        capture_target: CaptureTarget,
        mart_db: MartDuckDB,
    ) -> Any:
        selection = selection_of(context.selected_asset_keys, context.selected_asset_check_keys)
        pipeline = capture_target.pipeline_config
        basis = capture_target.time_basis
        store = capture_target.store()
        broken: list[str] = []
        connect = mart_db.get_connection if selection.marts else None
        with stop_on_signals() as stop, mart_session(connect, basis) as marts:
            for hour in context.partition_keys:
                start = hour_start_of(hour)
                scope = hour_scope(pipeline, start, int(time.time() * 1e6), until_us(config, start))
                report = refresh_hour(
                    store,
                    scope,
                    selection,
                    marts,
                    basis,
                    capture_target.coverage_threshold,
                    should_stop=stop.is_set,
                )
                if report.stopped:
                    break
                for event in hour_events(report, selection, hour, mart_db.database, basis):
                    context.log_event(event)
                context.log.info(
                    "%s: %d streams refreshed up to %s in %.1f s (%.1f s CPU)",
                    hour,
                    len(report.streams),
                    time.strftime("%H:%M:%S", time.gmtime(scope.cut_us / 1e6)),
                    report.seconds,
                    report.cpu_seconds,
                )
                broken += [f"{hour} {s.stream}: {s.errors}" for s in report.failed_streams()]
        if stop.is_set():
            # Stopped (Ctrl-C, the process asked to end): canceled, not failed. What was
            # written is consistent; the next refresh of the hour carries on from it.
            context.instance.report_run_canceling(
                context.run, message="stopped by a signal; the next refresh completes the hour"
            )
            raise KeyboardInterrupt
        if broken:
            raise dg.Failure(
                description=f"{len(broken)} stream-hour(s) could not be refreshed; everything "
                "else was written and judged. First: " + broken[0],
                metadata={"failed": "\n".join(broken[:200])},
            )
        yield from ()

    return hourly_refresh
