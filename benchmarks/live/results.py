"""One live run's measurements, and the figures and timeline derived from them."""

from __future__ import annotations

import bisect
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from benchmarks.live.bronze import SymbolBronze
from benchmarks.live.drops import DropCount
from benchmarks.live.profile import ProfileTop
from benchmarks.live.sampling import Sample, bracket, cpu_percent
from benchmarks.live.settings import LiveSettings

# The compiled core's live targets (200 symbols): capture CPU by lanes, lag, RSS.
BOOK_LANES_CPU_TARGET = 10.0  # % of a core, `l2,diffs`
EVERY_LANE_CPU_TARGET = 20.0  # % of a core, every lane
LAG_P95_TARGET_MS = 20.0
RSS_TARGET_MB = 120.0


def cpu_target_percent(lanes: str) -> float:
    """The capture CPU target for these lanes: the book lanes' alone, or every lane's."""
    return (
        BOOK_LANES_CPU_TARGET if set(lanes.split(",")) <= {"l2", "diffs"} else EVERY_LANE_CPU_TARGET
    )


@dataclass
class LiveRun:
    settings: LiveSettings
    symbols: list[str]
    summary: dict[str, Any]
    wall_s: float  # capture process start to exit
    rusage_cpu_s: float
    rusage_maxrss_kb: int
    capture: list[Sample]
    simulator: list[Sample]
    pyspy: list[Sample]
    machine: list[Sample]
    bronze: dict[str, SymbolBronze]
    drops: dict[str, DropCount]
    start_us: int  # wall clock when the capture was started
    simulator_start_s: float  # exchange start-up time (building 200 x 5,000-level books)
    profile: ProfileTop | None = None

    # --- derived ------------------------------------------------------------------------
    @property
    def synced(self) -> int:
        return sum(1 for b in self.bronze.values() if b.first_sync_us is not None)

    @property
    def all_synced_s(self) -> float | None:
        """Seconds from the capture's start until the last symbol's book was built."""
        if self.synced < len(self.symbols):
            return None
        last = max(b.first_sync_us for b in self.bronze.values() if b.first_sync_us is not None)
        return (last - self.start_us) / 1e6

    @property
    def steady_window(self) -> tuple[float, float]:
        """After every book is built (at the earliest steady_after_s) until the last sample
        before the burst's final flush and close."""
        start = max(self.settings.steady_after_s, self.all_synced_s or 0.0)
        end = min(self.settings.duration_s, self.wall_s) - 1.0
        if end - start < 5.0:
            # Books were built too late (or the burst is tiny): after steady_after_s, and at
            # least the second half of the burst, so that there is a window to report.
            start = min(self.settings.steady_after_s, end / 2)
        return start, end

    @property
    def client_drops(self) -> int:
        return sum(d.missing for d in self.drops.values())

    def diff_lane_lags_ms(self, start_s: float = 0.0) -> list[float]:
        lo = self.start_us + int(start_s * 1e6)
        return sorted(
            lag / 1000 for b in self.bronze.values() for ingest, lag in b.lags_us if ingest >= lo
        )

    def cost_per_event_us(self, start: float, end: float) -> tuple[float, int] | None:
        """Capture CPU µs per diff-lane event received over the window, and the event count.

        CPU time consumed is far less sensitive than wall-clock figures to other processes
        taking the cores, so it tells what the capture would need on a core of its own."""
        pair = bracket(self.capture, start, end)
        if pair is None:
            return None
        a, z = pair
        lo, hi = self.start_us + int(a.t * 1e6), self.start_us + int(z.t * 1e6)
        events = sum(
            1 for b in self.bronze.values() for ingest, _ in b.lags_us if lo <= ingest < hi
        )
        if not events:
            return None
        return 1e6 * (z.cpu_s - a.cpu_s) / events, events

    def others_cpu(self, start: float, end: float) -> float | None:
        """CPU % (of one core) of every process but the capture, the exchange and py-spy."""
        parts = [cpu_percent(x, start, end) for x in (self.machine, self.capture, self.simulator)]
        if any(p is None for p in parts):
            return None
        total, cap, sim = (p or 0.0 for p in parts)
        return total - cap - sim - (cpu_percent(self.pyspy, start, end) or 0.0)

    def timeline(self, buckets: int = 10) -> list[dict[str, Any]]:
        """Per time bucket: CPU of the capture, the exchange and everything else, books in
        sync, diff-lane lag p95, and the longest silence in receive times and in `E`: a hole
        in receive times without one in `E` means frames were held after the exchange stamped
        them (its send path or the client), a hole in both means the exchange's tick stalled."""
        span = min(self.settings.duration_s, self.wall_s)
        width = max(1.0, span / buckets)
        syncs = sorted(
            (b.first_sync_us - self.start_us) / 1e6
            for b in self.bronze.values()
            if b.first_sync_us is not None
        )
        per: dict[int, list[tuple[int, int]]] = {}
        for b in self.bronze.values():
            for ingest, lag in b.lags_us:
                per.setdefault(int((ingest - self.start_us) / 1e6 // width), []).append(
                    (ingest, lag)
                )
        rows = []
        for i in range(int(span // width + 0.999)):
            a, z = i * width, min(span, (i + 1) * width)
            got = per.get(i, [])
            recv = sorted(ingest for ingest, _ in got)
            stamped = sorted({ingest - lag for ingest, lag in got})
            rows.append(
                {
                    "from_s": round(a),
                    "to_s": round(z),
                    "capture_cpu": cpu_percent(self.capture, a, z),
                    "exchange_cpu": cpu_percent(self.simulator, a, z),
                    "others_cpu": self.others_cpu(a, z),
                    "capture_rss_mb": max(
                        (x.rss_kb / 1024 for x in self.capture if a <= x.t <= z), default=None
                    ),
                    "in_sync": bisect.bisect_right(syncs, z),
                    "events": len(got),
                    "lag_p95_ms": _pct(sorted(lag / 1000 for _, lag in got), 0.95),
                    "recv_gap_ms": _max_gap_ms(recv),
                    "e_gap_ms": _max_gap_ms(stamped),
                }
            )
        return rows

    # --- figures ------------------------------------------------------------------------
    def figures(self) -> list[dict[str, Any]]:
        s, n = self.settings, len(self.symbols)
        a, z = self.steady_window
        cpu_steady = cpu_percent(self.capture, a, z)
        cpu_whole = 100.0 * self.rusage_cpu_s / self.wall_s
        sim_cpu = cpu_percent(self.simulator, a, z)
        lag = self.summary.get("ingest_lag_ms", {})
        lane = self.diff_lane_lags_ms(a)
        peak_kb = max([self.rusage_maxrss_kb] + [x.rss_kb for x in self.capture])
        steady_rss = [x.rss_kb for x in self.capture if a <= x.t <= z]
        hwm_kb = max((x.hwm_kb for x in self.capture), default=0)
        expected_rate = n * 1000 / s.interval_ms
        received = sum(d.received for d in self.drops.values())
        rate = received / min(s.duration_s, self.wall_s)
        resyncs = int(self.summary.get("resyncs", 0))
        drops = self.client_drops
        span = sum(d.in_span for d in self.drops.values())
        after = sum(d.after for d in self.drops.values())
        before = sum(d.before for d in self.drops.values())
        unknown = sum(d.unknown for d in self.drops.values())
        runs = sum(d.runs for d in self.drops.values())
        longest = max((d.longest for d in self.drops.values()), default=0)
        reconnects = int(self.summary.get("reconnects", 0))
        others = self.others_cpu(a, z)
        cost = self.cost_per_event_us(a, z)
        cpu_target = cpu_target_percent(s.lanes)
        budget_us = cpu_target / 100 * 1e6 / expected_rate  # the CPU target spread per event
        window = f"steady window {a:.0f}-{z:.0f} s"
        synced = f"{self.synced}/{n} books in sync by the end" + (
            f" (all after {self.all_synced_s:.0f} s)" if self.all_synced_s is not None else ""
        )
        profiled = " (py-spy attached)" if self.profile is not None else ""
        spy_cpu = self.profile.cpu_percent if self.profile is not None else None

        def fig(
            name: str, value: float | None, unit: str, target: str, met: bool, notes: str
        ) -> dict[str, Any]:
            return {
                "name": name,
                "value": round(float("nan") if value is None else float(value), 2),
                "unit": unit,
                "target": target,
                "met": bool(met and value is not None),
                "notes": notes,
            }

        return [
            fig(
                f"live capture CPU, {n} symbols, lanes {s.lanes}",
                cpu_steady,
                "% of one core",
                f"<= {cpu_target:g}",
                cpu_steady is not None and cpu_steady <= cpu_target,
                f"{window}, {synced}; whole burst {cpu_whole:.1f}% "
                f"(rusage, incl. start-up and bootstrap){profiled}"
                + (f"; py-spy itself {spy_cpu:.1f}%" if spy_cpu is not None else ""),
            ),
            fig(
                "live capture CPU per event",
                cost[0] if cost else None,
                "µs/event",
                f"< {budget_us:.0f} ({cpu_target:g}% of a core at {expected_rate:.0f} events/s)",
                cost is not None and cost[0] < budget_us,
                (
                    f"{window}: capture CPU seconds / {cost[1]} diff-lane events received; at "
                    f"{expected_rate:.0f} events/s this is {cost[0] * expected_rate / 1e4:.1f}% "
                    "of a core; snapshot handling during bootstrap is included"
                    if cost
                    else f"{window}: no events"
                ),
            ),
            fig(
                "live ingest lag p95",
                lag.get("p95"),
                "ms",
                f"< {LAG_P95_TARGET_MS:g}",
                lag.get("p95") is not None and lag["p95"] < LAG_P95_TARGET_MS,
                f"capture summary (in-sync events): p50 {lag.get('p50')} ms, max "
                f"{lag.get('max')} ms; diff lane (all events, {window}): p50 "
                f"{_fmt(_pct(lane, 0.5))} ms, p95 {_fmt(_pct(lane, 0.95))} ms, max "
                f"{_fmt(lane[-1] if lane else None)} ms; includes the exchange's own tick time",
            ),
            fig(
                "live client drops",
                drops,
                "events",
                "0",
                drops == 0 and unknown == 0,
                f"exchange sent log vs bronze diff lane: {span} sent within the client's span, "
                f"{drops} missing in {runs} stretches (longest {longest} events of one "
                f"symbol); {after} in flight at stop, {before} before the first "
                f"received (not drops); {unknown} received but never sent; "
                + (
                    f"{reconnects} reconnects: the exchange cuts off a client "
                    "20,000 frames behind and discards what it had queued for it; "
                    if reconnects
                    else ""
                )
                + "capture "
                f"covered_by_snapshots {self.summary.get('covered_by_snapshots')}, "
                f"unsynced_at_end {self.summary.get('unsynced_at_end')} (events received while "
                "books were being built: covered by their snapshots, or not yet at the end)",
            ),
            fig(
                "live capture peak RSS",
                peak_kb / 1024,
                "MB",
                f"< {RSS_TARGET_MB:g}",
                peak_kb / 1024 < RSS_TARGET_MB,
                f"rusage maxrss / VmRSS samples; VmHWM {hwm_kb / 1024:.1f} MB; steady median "
                f"{_fmt(statistics.median(steady_rss) / 1024 if steady_rss else None)} MB; "
                f"{synced}, snapshot limit {s.snapshot_limit or 'capture default'}",
            ),
            fig(
                "live exchange CPU (context)",
                sim_cpu,
                "% of one core",
                "< 100 (keeps its tick)",
                sim_cpu is not None and sim_cpu < 100,
                f"{window}; the exchange shares the machine's "
                f"{os.cpu_count()} cores with the capture; it started in "
                f"{self.simulator_start_s:.1f} s ({s.levels} levels a side)",
            ),
            fig(
                "live events received",
                rate,
                "events/s",
                f">= 98% of {expected_rate:.0f}",
                rate >= 0.98 * expected_rate,
                f"{received} distinct events in the diff lane over {s.duration_s:.0f} s; "
                f"summary events {self.summary.get('events')}, duplicates "
                f"{self.summary.get('duplicates')}, records {self.summary.get('records')}",
            ),
            fig(
                "live resyncs",
                resyncs,
                "resyncs",
                "0",
                resyncs == 0,
                f"by cause {self.summary.get('resyncs_by_cause')}; reconnects "
                f"{self.summary.get('reconnects')}; snapshots {self.summary.get('snapshots')}, "
                f"too old {self.summary.get('snapshots_too_old')}; rate limited "
                f"{self.summary.get('rate_limited')}",
            ),
            fig(
                "live machine: other processes' CPU (context)",
                others,
                "% of one core",
                f"< 50 of {100 * (os.cpu_count() or 1)} (else the run is contended)",
                others is not None and others < 50,
                f"{window}: every process on the machine but the capture, the exchange and "
                "py-spy (/proc/stat); the capture cannot get the CPU it needs when the cores "
                "are full, whatever its own cost",
            ),
        ]


def _pct(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def _max_gap_ms(sorted_us: Sequence[int]) -> float | None:
    if len(sorted_us) < 2:
        return None
    return max(b - a for a, b in pairwise(sorted_us)) / 1000


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
