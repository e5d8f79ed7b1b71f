"""An hour's refresh report as Dagster events: one materialization per selected asset and one
evaluation per selected check, each with its per-stream detail (see assets/refresh.py)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import dagster as dg

from orderbook_pipeline.assets.bronze import lake_materialization
from orderbook_pipeline.assets.keys import GAP_WINDOWS_KEY, mart_key, silver_key
from orderbook_pipeline.checks.specs import CHECKS, GAP_WINDOWS, CheckSpec
from orderbook_pipeline.refresh.hour import HourReport
from orderbook_pipeline.refresh.stream import Selection
from orderbook_pipeline.refresh.verdicts import exchange_side_only, hour_verdict

Event = dg.AssetMaterialization | dg.AssetCheckEvaluation
CONTINUITY_KEY = (GAP_WINDOWS, "sequence_continuity")


def _iso(us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us / 1e6))


def hour_events(
    report: HourReport, selection: Selection, hour: str, database: str, basis: str
) -> list[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """The hour's materializations (one per selected asset) and check evaluations (one per
    selected check), each with its per-stream detail."""
    scope = report.scope
    common: dict[str, Any] = {"judged_until": _iso(scope.cut_us), "hour_closed": scope.closed}
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = []
    for lane in sorted(selection.lanes):
        events.append(
            dg.AssetMaterialization(
                asset_key=silver_key(lane),
                partition=hour,
                metadata={**common, **_lane(report, lane)},
            )
        )
        lake = _lake(report, lane)
        if scope.closed and lake["streams"]:
            events.append(lake_materialization(lane, hour, lake))
    if selection.gap_windows:
        events.append(
            dg.AssetMaterialization(
                asset_key=GAP_WINDOWS_KEY, partition=hour, metadata={**common, **_gaps(report)}
            )
        )
    for table in sorted(selection.marts):
        metadata = {**common, **_mart(report, table, database, basis)}
        events.append(
            dg.AssetMaterialization(asset_key=mart_key(table), partition=hour, metadata=metadata)
        )
    for spec in CHECKS:
        if spec.key in selection.checks:
            evaluation = _evaluation(spec, report, hour)
            if evaluation is not None:
                events.append(evaluation)
    return events


def _mart(report: HourReport, table: str, database: str, basis: str) -> dict[str, Any]:
    """A mart's hour: numbers Dagster plots (rows, gap buckets), the time span, the columns, a
    preview, and per stream where its gold Parquet file is."""
    built = [(s.stream, s.marts[table]) for s in report.streams if table in s.marts]
    parts = [p for _stream, p in built]
    rows = sum(p.rows for p in parts)
    firsts = [p.first_bucket for p in parts if p.first_bucket is not None]
    lasts = [p.last_bucket for p in parts if p.last_bucket is not None]
    out: dict[str, Any] = {
        "dagster/row_count": rows,
        "rows": rows,
        "gap_buckets": sum(p.gap_buckets for p in parts),
        "streams": len(built),
        "first_bucket": dg.MetadataValue.timestamp(min(firsts)) if firsts else "none",
        "last_bucket": dg.MetadataValue.timestamp(max(lasts)) if lasts else "none",
        "database": database,
        "time_basis": basis,
    }
    if not parts:
        return out
    out["dagster/column_schema"] = dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type)) for f in parts[0].schema]
    )
    out["per_stream"] = dg.MetadataValue.table(
        [
            dg.TableRecord(
                {"stream": stream, "rows": p.rows, "gap_buckets": p.gap_buckets, "parquet": p.path}
            )
            for stream, p in built
        ],
        dg.TableSchema(
            columns=[
                dg.TableColumn("stream", "string"),
                dg.TableColumn("rows", "int"),
                dg.TableColumn("gap_buckets", "int"),
                dg.TableColumn("parquet", "string"),
            ]
        ),
    )
    stream, first = next(((s, p) for s, p in built if p.preview), built[0])
    if first.preview:
        out["preview"] = dg.MetadataValue.md(
            f"{stream}, first rows:\n\n" + _markdown(first.preview)
        )
    return out


def _markdown(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(r[n]) for n in names) + " |" for r in rows]
    return "\n".join(lines)


def _lane(report: HourReport, lane: str) -> dict[str, Any]:
    results = [(s, s.lanes[lane]) for s in report.streams if lane in s.lanes]
    failed = [s.stream for s in report.streams if f"silver {lane}" in s.errors]
    return {
        "rows": sum(r.rows_total for _s, r in results),
        "new_rows": sum(r.rows_new for _s, r in results),
        "streams": len(results),
        "parts_written": sum(r.parts_written for _s, r in results),
        "bronze_files_read": sum(r.files_read for _s, r in results),
        "recompacted_streams": sum(r.recompacted for _s, r in results),
        "failed_streams": ", ".join(failed[:50]) or "none",
    }


def _lake(report: HourReport, lane: str) -> dict[str, Any]:
    results = [r for s in report.streams if lane in s.lanes for r in [s.lanes[lane]]]
    files = sum(len(state.files) for r in results for state in r.states.values())
    return {"files": files, "streams": len(results)}


def _gaps(report: HourReport) -> dict[str, Any]:
    causes: Counter[str] = Counter()
    rows = []
    for s in report.streams:
        gaps = s.gap_windows
        stream_causes = Counter(gaps.column("cause").to_pylist()) if gaps is not None else Counter()
        causes.update(stream_causes)
        coverage = s.checks.get((GAP_WINDOWS, "coverage"))
        ratio = coverage.metadata.get("coverage_ratio") if coverage is not None else None
        rows.append(
            dg.TableRecord(
                {
                    "stream": s.stream,
                    "gap_windows": gaps.num_rows if gaps is not None else -1,
                    "causes": ", ".join(f"{c} {n}" for c, n in sorted(stream_causes.items())),
                    "coverage": float(ratio) if isinstance(ratio, float) else -1.0,
                }
            )
        )
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("stream", "string"),
            dg.TableColumn("gap_windows", "int", description="-1: not derived (see errors)"),
            dg.TableColumn("causes", "string"),
            dg.TableColumn("coverage", "float", description="in-sync share; -1: not judged"),
        ]
    )
    return {
        "gaps": sum(causes.values()),
        "causes": dict(sorted(causes.items())),
        "streams_with_gaps": sum(
            1 for s in report.streams if s.gap_windows is not None and s.gap_windows.num_rows
        ),
        "streams": dg.MetadataValue.table(rows, schema),
    }


def _evaluation(spec: CheckSpec, report: HourReport, hour: str) -> dg.AssetCheckEvaluation | None:
    if spec.name == "judged_in_time":
        return _judged_in_time(spec, report, hour)
    verdict = hour_verdict(spec.key, report.streams)
    if verdict is None:
        return None
    metadata: dict[str, Any] = {
        "streams_judged": verdict.judged,
        "streams_failed": sum(len(v) for v in verdict.failed_streams.values()),
        "judged_until": _iso(report.scope.cut_us),
        **verdict.totals,
    }
    if verdict.failures:
        metadata["failures"] = dg.MetadataValue.table(
            [dg.TableRecord(f) for f in verdict.failures],
            dg.TableSchema(
                columns=[dg.TableColumn("stream", "string"), dg.TableColumn("summary", "string")]
            ),
        )
        metadata["failed_streams"] = dg.MetadataValue.json(verdict.failed_streams)
    # A loss this deployment caused is an error; one only the exchange caused (every burst
    # missed the same ids) a warning: it is recorded, and nothing here could have prevented it.
    # Continuity and coverage both judge the gap windows: their causes decide for both.
    gaps = hour_verdict(CONTINUITY_KEY, report.streams) if spec.asset == GAP_WINDOWS else None
    severity = (
        dg.AssetCheckSeverity.WARN
        if not verdict.passed and gaps is not None and exchange_side_only(gaps.totals)
        else dg.AssetCheckSeverity.ERROR
    )
    return dg.AssetCheckEvaluation(
        asset_key=silver_key(spec.asset),
        check_name=spec.name,
        passed=verdict.passed,
        partition=hour,
        severity=severity,
        description=verdict.summary,
        metadata=metadata,
    )


def _judged_in_time(spec: CheckSpec, report: HourReport, hour: str) -> dg.AssetCheckEvaluation:
    failed = report.failed_streams()
    passed = not failed
    summary = (
        f"all {len(report.streams)} streams judged up to {_iso(report.scope.cut_us)}"
        if passed
        else f"{len(failed)} of {len(report.streams)} stream(s) could not be judged; "
        f"{failed[0].stream}: {'; '.join(failed[0].errors.values())}"
    )
    by_stage: Counter[str] = Counter()
    for s in report.streams:
        by_stage.update(s.cpu_seconds)
    metadata: dict[str, Any] = {
        "judged_until": _iso(report.scope.cut_us),
        "refresh_seconds": round(report.seconds, 3),
        "refresh_cpu_seconds": round(report.cpu_seconds, 3),
        # Where the CPU went, summed over the streams (checks are a stage each).
        "cpu_seconds_by_stage": dg.MetadataValue.json(
            {k: round(v, 3) for k, v in by_stage.most_common()}
        ),
        "streams": len(report.streams),
        "streams_failed": len(failed),
    }
    if failed:
        metadata["errors"] = "\n".join(f"{s.stream}: {s.errors}" for s in failed[:100])
    return dg.AssetCheckEvaluation(
        asset_key=silver_key(spec.asset),
        check_name=spec.name,
        passed=passed,
        partition=hour,
        severity=dg.AssetCheckSeverity.ERROR,
        description=summary,
        metadata=metadata,
    )
