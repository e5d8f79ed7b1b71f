"""What Dagster recorded: runs, refresh events, freshness, closed hours, verdicts, ticks."""

from __future__ import annotations

import calendar
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.pipeline.lake import LakeWatcher, covered_at, hour_end_of, landing_lags
from benchmarks.pipeline.settings import spread
from orderbook_pipeline.storage.layout import partition_of


def _meta(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster metadata values as plain values (tables and the like as their type name)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        plain = getattr(value, "value", value)
        out[key] = (
            plain
            if isinstance(plain, (int, float, str, bool, dict, list, type(None)))
            else type(value).__name__
        )
    return out


def _iso_us(text: Any) -> int | None:
    """ "2026-12-02T10:15:00Z" (UTC) -> µs since the epoch."""
    if not isinstance(text, str):
        return None
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 10**6
    except ValueError:
        return None


def run_table(instance: Any, cpu_by_run: Mapping[str, float]) -> list[dict[str, Any]]:
    rows = []
    for r in instance.get_run_records(ascending=True):
        run = r.dagster_run
        rows.append(
            {
                "run_id": run.run_id,
                "job": run.job_name,
                "status": run.status.value,
                "partition": run.tags.get("dagster/partition"),
                "final": run.tags.get("orderbook/final"),
                "created": r.create_timestamp.timestamp(),
                "start": r.start_time,
                "end": r.end_time,
                "process_cpu_s": round(cpu_by_run.get(run.run_id, 0.0), 2)
                if run.run_id in cpu_by_run
                else None,
                "failure": _failure(instance, run.run_id)
                if run.status.value == "FAILURE"
                else None,
            }
        )
    return rows


def _failure(instance: Any, run_id: str) -> str:
    """Why a run failed, in a line: the first step or run failure's message and error."""
    from dagster import DagsterEventType

    kinds = {DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
    for rec in _events(instance, run_id, kinds):
        entry = rec.event_log_entry
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        text = error.to_string() if error is not None else ""
        return " | ".join(part for part in (entry.message, text) if part)[:2000]
    return "no failure event recorded"


def _events(instance: Any, run_id: str, types: set[Any]) -> list[Any]:
    return list(instance.get_records_for_run(run_id, of_type=types).records)


def capture_runs(instance: Any, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each finished capture run's summary (its step output's metadata)."""
    from dagster import DagsterEventType

    out = []
    for run in runs:
        if run["job"] != "capture_job":
            continue
        summary: dict[str, Any] = {}
        for rec in _events(instance, run["run_id"], {DagsterEventType.STEP_OUTPUT}):
            data = rec.event_log_entry.dagster_event.event_specific_data
            summary = _meta(data.metadata).get("summary") or {}
        out.append({**run, "summary": summary if isinstance(summary, dict) else {}})
    return out


def refresh_runs(instance: Any, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each refresh run with its events: per asset the judged_until, per check the verdict."""
    from dagster import DagsterEventType

    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION}
    out = []
    for run in runs:
        if run["job"] != "refresh_job":
            continue
        mats: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        for rec in _events(instance, run["run_id"], kinds):
            entry = rec.event_log_entry
            event = entry.dagster_event
            data = event.event_specific_data
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                mat = data.materialization
                mats.append(
                    {
                        "asset": "/".join(mat.asset_key.path),
                        "partition": mat.partition,
                        "at": entry.timestamp,
                        "meta": _meta(mat.metadata),
                    }
                )
            else:
                checks.append(
                    {
                        "check": f"{'/'.join(data.asset_key.path)}:{data.check_name}",
                        "partition": data.partition,
                        "passed": bool(data.passed),
                        "at": entry.timestamp,
                        "meta": _meta(data.metadata),
                    }
                )
        judged = next((c for c in checks if c["check"].endswith(":judged_in_time")), None)
        jm = judged["meta"] if judged else {}
        until_us = _iso_us(jm.get("judged_until"))
        gaps = next((m for m in mats if m["asset"] == "silver/gap_windows"), None)
        out.append(
            {
                **run,
                "refresh_seconds": jm.get("refresh_seconds"),
                "refresh_cpu_seconds": jm.get("refresh_cpu_seconds"),
                "judged_until": jm.get("judged_until"),
                "lag_end_minus_judged_s": None
                if until_us is None or run["end"] is None
                else round(run["end"] - until_us / 1e6, 1),
                "gaps": gaps["meta"].get("gaps") if gaps else None,
                "gap_causes": gaps["meta"].get("causes") if gaps else None,
                "checks_failed": [c["check"] for c in checks if not c["passed"]],
                "materializations": mats,
                "checks": checks,
            }
        )
    return out


def judged_series(refreshes: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """kind -> hour -> [(time, judged_until µs)] in time order: per refresh run, when its last
    event of the kind was logged and the least judged_until among them (a kind is done once each
    of its assets, or checks, is). Failed runs count too: the UI shows whatever was logged."""
    per_run: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    out: dict[str, dict[str, list[tuple[float, int]]]] = defaultdict(lambda: defaultdict(list))
    for run in refreshes:
        per_run.clear()
        for m in run["materializations"]:
            until = _iso_us(m["meta"].get("judged_until"))
            if until is None or m["partition"] is None:
                continue
            if m["asset"] == "silver/gap_windows":
                kind = "gap_windows"
            elif m["asset"].startswith("gold/"):
                kind = "marts"
            elif m["asset"].startswith("silver/"):
                kind = "silver_events"
            else:
                continue
            per_run[(kind, m["partition"])].append((m["at"], until))
        for c in run["checks"]:
            until = _iso_us(c["meta"].get("judged_until"))
            if until is not None and c["partition"] is not None:
                per_run[("checks", c["partition"])].append((c["at"], until))
        for (kind, hour), events in per_run.items():
            out[kind][hour].append((max(a for a, _ in events), min(u for _, u in events)))
    return {kind: {h: sorted(v) for h, v in hours.items()} for kind, hours in out.items()}


def hour_key_of(rel: str) -> str | None:
    part = partition_of(rel)
    if part is None:
        return None
    return time.strftime("%Y-%m-%d-%H:00", time.gmtime(part.hour_start_us / 1e6))


def freshness(
    lake: LakeWatcher, refreshes: Sequence[dict[str, Any]], end: float, interval_s: float
) -> dict[str, Any]:
    horizon = 2 * interval_s
    in_progress = {
        p: t for p, t in lake.landings.items() if (e := hour_end_of(p)) is not None and t < e
    }
    series = judged_series(refreshes)
    out: dict[str, Any] = {"horizon_s": horizon}
    done: dict[str, dict[str, float]] = {"silver": dict(lake.consumed)}
    for kind in ("gap_windows", "marts", "checks"):
        done[kind] = {}
        for path in in_progress:
            hour, last = hour_key_of(path), lake.file_max.get(path)
            if hour is None or last is None:
                continue
            at = covered_at(last, series.get(kind, {}).get(hour, []))
            if at is not None:
                done[kind][path] = at
    for kind, done_at in done.items():
        out[kind] = landing_lags(in_progress, done_at, end, horizon).figures()
        by_lane: dict[str, list[str]] = defaultdict(list)
        for path in in_progress:
            by_lane[path.split("/")[1]].append(path)
        if kind == "silver":
            out["silver_by_lane"] = {
                lane: landing_lags(
                    {p: in_progress[p] for p in paths}, done_at, end, horizon
                ).figures()
                for lane, paths in sorted(by_lane.items())
            }
    # Uncensored, for context: every file of the hour in progress that silver took in.
    out["silver_all_consumed"] = spread(
        max(0.0, lake.consumed[p] - t) for p, t in in_progress.items() if p in lake.consumed
    )
    out["files"] = {"landed": len(lake.landings), "hour_in_progress": len(in_progress)}
    return out


def closed_hours(
    runs: Sequence[dict[str, Any]], window_start: float, end: float, settle_s: float
) -> dict[str, float | None]:
    """Hours that closed (and settled) inside the window: seconds from the hour's end to the end
    of its first successful final refresh (None: none by the end)."""
    hours = {r["partition"] for r in runs if r["job"] == "refresh_job" and r["partition"]}
    out: dict[str, float | None] = {}
    for hour in sorted(hours):
        hour_end = calendar.timegm(time.strptime(hour, "%Y-%m-%d-%H:%M")) + 3600
        if not window_start <= hour_end <= end - settle_s:
            continue
        finals = [
            r["end"]
            for r in runs
            if r["job"] == "refresh_job"
            and r["partition"] == hour
            and r["final"] == "1"
            and r["status"] == "SUCCESS"
            and r["end"] is not None
        ]
        out[hour] = round(min(finals) - hour_end, 1) if finals else None
    return out


def check_verdicts(refreshes: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per hour, the last refresh's verdicts and gap windows."""
    out: dict[str, dict[str, Any]] = {}
    for run in refreshes:
        hour = run["partition"]
        if hour is None or not run["checks"]:
            continue
        out[hour] = {
            "run_id": run["run_id"],
            "judged_until": run["judged_until"],
            "gaps": run["gaps"],
            "gap_causes": run["gap_causes"],
            "checks": {
                c["check"]: {
                    "passed": c["passed"],
                    "streams_judged": c["meta"].get("streams_judged", c["meta"].get("streams")),
                    "streams_failed": c["meta"].get("streams_failed"),
                }
                for c in run["checks"]
            },
        }
    return out


def late_reports(instance: Any) -> list[dict[str, Any]]:
    """judged_in_time failures the refresh sensor logged itself (no run): overdue hours."""
    from dagster import AssetCheckKey

    from orderbook_pipeline.assets.keys import GAP_WINDOWS_KEY

    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(GAP_WINDOWS_KEY, "judged_in_time"), limit=200
    )
    return [{"partition": r.partition, "at": r.create_timestamp} for r in history if not r.run_id]


def sensor_ticks(instance: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for state in instance.all_instigator_state():
        if state.instigator_type.value != "SENSOR":
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100_000)
        durations = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
        out[state.instigator_name] = {
            **{k: None if v is None else round(v, 3) for k, v in spread(durations).items()},
            "ticks": len(ticks),
            "statuses": dict(Counter(t.status.value for t in ticks)),
        }
    return out
