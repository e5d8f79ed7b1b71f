"""The capture's, the orchestration's and the storage's figures."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.live import (
    count_drops,
    cpu_percent,
)
from benchmarks.pipeline.observe import Observation, home_breakdown
from benchmarks.pipeline.processes import CpuLedger
from benchmarks.pipeline.settings import (
    COMPONENTS,
    ORCHESTRATION,
    OTHER,
    RUN_WORKER,
    VENUE,
    percentile,
)


@dataclass
class StreamIds:
    diffs: set[tuple[int, int]] = field(default_factory=set)
    l2: set[int] = field(default_factory=set)


def read_stream_ids(home: Path, symbol: str) -> StreamIds:
    """(U, u) of every burst's diff lane, and u of every in-sync L2 record at the smallest depth
    (every depth has a record per applied event: one depth suffices). Decoded column-wise by the
    product's own reader: fastavro builds a dict per record, minutes for 100 symbols."""
    from orderbook_pipeline.compaction.avro_arrow import read_avro_tables

    ids = StreamIds()
    base = f"market={VENUE}/symbol={symbol}"
    diffs = sorted((home / "bronze" / "diffs" / base).rglob("*.avro"))
    table = read_avro_tables((p.read_bytes() for p in diffs), ["first_update_id", "last_update_id"])
    if table is not None:
        first, last = table.column(0).to_pylist(), table.column(1).to_pylist()
        ids.diffs = set(zip(first, last, strict=True))
    l2 = sorted((home / "bronze" / "l2" / base).rglob("*.avro"))
    depths = {p.parent.name for p in l2 if p.parent.name.startswith("depth=")}
    smallest = min(depths, key=lambda d: int(d.split("=")[1]), default=None)
    table = read_avro_tables(
        (p.read_bytes() for p in l2 if p.parent.name == smallest), ["last_update_id"]
    )
    if table is not None:
        ids.l2 = set(table.column(0).to_pylist())
    return ids


def capture_figures(
    home: Path, sent: Mapping[str, list[int]], captures: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Client drops and L2 coverage per symbol (from outside), and the bursts' own counters."""
    per: dict[str, Any] = {}
    uncovered: list[float] = []
    uncovered_steady: list[float] = []
    for symbol, sent_u in sent.items():
        ids = read_stream_ids(home, symbol)
        if not sent_u:
            per[symbol] = {"sent": 0}
            continue
        # The sent log was read just before the stop: later events are not compared.
        top = max(sent_u)
        received = {k for k in ids.diffs if k[1] <= top}
        d = count_drops(sent_u, received)
        got = {u for _, u in received}
        lo = min(got, default=top + 1)
        span = sorted({u for u in sent_u if lo <= u <= top})
        missing_l2 = [u for u in span if u not in ids.l2]
        first_l2 = min(ids.l2, default=top + 1)
        steady = [u for u in span if u >= first_l2]
        missing_steady = sum(1 for u in steady if u not in ids.l2)
        share = len(missing_l2) / len(span) if span else None
        share_steady = missing_steady / len(steady) if steady else None
        if share is not None:
            uncovered.append(share)
        if share_steady is not None:
            uncovered_steady.append(share_steady)
        per[symbol] = {
            **asdict(d),
            "l2_uncovered": len(missing_l2),
            "l2_uncovered_share": share,
            "l2_uncovered_after_first_sync": missing_steady,
            "l2_uncovered_share_after_first_sync": share_steady,
        }
    missing = sum(v.get("missing", 0) for v in per.values())
    in_span = sum(v.get("in_span", 0) for v in per.values())
    causes: Counter[str] = Counter()
    for run in captures:
        causes.update(run["summary"].get("resyncs_by_cause") or {})
    return {
        "drops_missing": missing,
        "drops_in_span": in_span,
        "drop_rate": missing / in_span if in_span else None,
        "unknown": sum(v.get("unknown", 0) for v in per.values()),
        "after_sent_log": sum(v.get("after", 0) for v in per.values()),
        "l2_uncovered_share": {
            "median": percentile(uncovered, 0.5),
            "p10": percentile(uncovered, 0.1),
            "worst": max(uncovered, default=None),
        },
        "l2_uncovered_share_after_first_sync": {
            "median": percentile(uncovered_steady, 0.5),
            "p10": percentile(uncovered_steady, 0.1),
            "worst": max(uncovered_steady, default=None),
        },
        "resyncs_by_cause": dict(causes),
        "stall_resyncs": causes.get("stale", 0),
        "bursts": [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "start": r["start"],
                "end": r["end"],
                "process_cpu_s": r["process_cpu_s"],
                **{
                    k: r["summary"].get(k)
                    for k in ("events", "resyncs", "resyncs_by_cause", "unsynced_at_end")
                },
                "ingest_lag_ms": r["summary"].get("ingest_lag_ms"),
            }
            for r in captures
        ],
        "per_symbol": per,
    }


def orchestration_figures(ledger: CpuLedger, obs: Observation, ui_cpu_s: float) -> dict[str, Any]:
    elapsed = max(1e-9, obs.window_end - obs.window_start)
    cpu = ledger.cpu_by_component()
    pct = {c: round(100 * cpu.get(c, 0.0) / elapsed, 2) for c in (*COMPONENTS, RUN_WORKER, OTHER)}
    orchestration = sum(cpu.get(c, 0.0) for c in ORCHESTRATION)
    m = obs.machine
    machine = cpu_percent(m, m[0].t, m[-1].t) if len(m) >= 2 else None
    ours = sum(cpu.values())
    rss_peak = {c: round(kb / 1024, 1) for c, kb in ledger.peak_rss_kb.items()}
    return {
        "window_s": round(elapsed, 1),
        "cpu_pct": pct,
        "cpu_s": {c: round(v, 1) for c, v in cpu.items()},
        "orchestration_pct": round(100 * (orchestration - ui_cpu_s) / elapsed, 2),
        "orchestration_with_ui_probes_pct": round(100 * orchestration / elapsed, 2),
        "ui_probe_webserver_cpu_s": round(ui_cpu_s, 1),
        "machine_busy_pct": None if machine is None else round(machine, 1),
        "machine_others_pct": None
        if machine is None
        else round(machine - 100 * (ours + obs.harness_cpu_s) / elapsed, 1),
        "harness_pct": round(100 * obs.harness_cpu_s / elapsed, 2),
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "rss_peak_mb": rss_peak,
        "queued": [row["queued"] for row in obs.timeline],
    }


def storage_figures(obs: Observation, streams: int, dagster_home: Path) -> dict[str, Any]:
    rows = [r for r in obs.timeline if r["event_log_rows"] is not None] or obs.timeline
    if len(obs.timeline) < 2:
        return {}
    first, last = obs.timeline[0], obs.timeline[-1]
    hours = max(1e-9, (last["t"] - first["t"]) / 3600)
    stream_hours = streams * hours
    grew = last["dagster_home_bytes"] - first["dagster_home_bytes"]
    rows_grew = (rows[-1]["event_log_rows"] or 0) - (rows[0]["event_log_rows"] or 0)
    return {
        "dagster_home_bytes_start": first["dagster_home_bytes"],
        "dagster_home_bytes_end": last["dagster_home_bytes"],
        "bytes_per_stream_hour": round(grew / stream_hours),
        "mb_per_stream_day": round(grew / stream_hours * 24 / 1e6, 3),
        "event_rows_start": rows[0]["event_log_rows"],
        "event_rows_end": rows[-1]["event_log_rows"],
        "event_rows_per_stream_hour": round(rows_grew / stream_hours, 1),
        "event_rows_per_stream_day": round(rows_grew / stream_hours * 24),
        "stream_hours": round(stream_hours, 3),
        "breakdown_end": home_breakdown(dagster_home),
    }
