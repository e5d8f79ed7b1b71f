"""Live capture benchmark: one capture burst against the bundled exchange, measured from outside.

    python -m benchmarks.live                     # full: 200 symbols, 300 s (about 6 minutes)
    python -m benchmarks.live --quick             # 40 symbols, 20 s
    python -m benchmarks.live --profile           # also py-spy the capture's steady phase
    python -m benchmarks.live --symbols 5 --duration 8 --snapshot-limit 1000 --keep /tmp/live

Issue 4's target: live capture of 200 symbols at 100 ms from the bundled exchange on one core,
ingest lag p95 under 50 ms, no event dropped by the client, capture CPU under 25% of one core,
and under 150 MB resident with 5,000-level books.

Method. The exchange (`orderbook-pipeline simulate`) and the burst (`orderbook-pipeline
capture`) each run as their own process, exactly as in production, so the numbers include
websockets, the event loop, Avro and the file system, and nothing of this harness. Both are
sampled from /proc once a second (utime+stime, VmRSS, VmHWM); the capture's total CPU and peak
RSS also come from wait4()'s rusage, which misses nothing between samples. Lag percentiles come
from the capture's own summary (in-sync events only) and, independently, from the bronze diff
lane (every event received). Client drops are counted without trusting the client: the exchange's
sent log (`GET /sim/sent`, every `u` it dispatched) against the distinct (U, u) in the bronze
diff lane, per symbol, over the span the client was reading (first to last `u` it received;
events still in flight when the burst stopped reading are reported, not counted as drops).

Client and server share the machine's cores: the exchange's CPU is reported because a saturated
exchange delays events (its tick stamps `E` before it steps every market, so the time it spends
stepping 200 books is inside the measured lag) and would make the client look slow.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastavro

from orderbook_pipeline.storage.layout import burst_id_of, is_final, stream_prefix

VENUE = "binance-spot"
ROOT = Path(__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_READY_RE = re.compile(r"ws://127\.0\.0\.1:(\d+)")

# Real, liquid spot pairs first (so the stream names look like production), then synthetic ones.
# The exchange accepts any name: it derives tick, step and price from a hash of the name.
_REAL_SYMBOLS = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "TRXUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "BCHUSDT",
    "ATOMUSDT",
    "UNIUSDT",
    "ETCUSDT",
    "XLMUSDT",
    "FILUSDT",
    "APTUSDT",
    "ARBUSDT",
    "OPUSDT",
    "NEARUSDT",
    "INJUSDT",
    "SUIUSDT",
]


def symbol_names(n: int) -> list[str]:
    """n distinct, plausible spot symbols: real pairs, then S001USDT, S002USDT, ..."""
    if n <= 0:
        raise ValueError("at least one symbol")
    synthetic = [f"S{i:03d}USDT" for i in range(1, n + 1)]
    return (_REAL_SYMBOLS + synthetic)[:n]


# ---------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LiveSettings:
    symbols: int = 200
    duration_s: float = 300.0
    interval_ms: int = 100
    levels: int = 5000
    depths: str = "10,20,50"
    # The lanes captured: issue 4's targets are about the book lanes; "all" is every lane.
    lanes: str = "l2,diffs"
    # The capture's default (the venue's deepest, 5000 on spot) when None.
    snapshot_limit: int | None = None
    # CPU/RSS "steady" figures start here at the earliest (book bootstrap, process start-up).
    steady_after_s: float = 15.0
    profile: bool = False
    profile_rate: int = 100
    seed: int = 1
    # Data root to keep (with the logs and py-spy's raw profile); else a temporary one, removed.
    keep_dir: Path | None = None
    # Seconds to wait for the exchange to come up (200 symbols x 5,000 levels take a few).
    start_timeout_s: float = 120.0

    @classmethod
    def for_mode(cls, quick: bool, **overrides: Any) -> LiveSettings:
        base = cls(symbols=40, duration_s=20.0, steady_after_s=8.0) if quick else cls()
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **given})


# ---------------------------------------------------------------------------------- /proc
@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the capture was started (monotonic)
    cpu_s: float  # utime + stime of every thread
    rss_kb: int
    hwm_kb: int


def read_proc(pid: int, t: float) -> Sample | None:
    """One /proc sample of pid, or None once it is gone (or a zombie without status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat.rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    kb = {
        k: int(v.split()[0])
        for k, _, v in (line.partition(":") for line in status.splitlines())
        if k in ("VmRSS", "VmHWM")
    }
    if "VmRSS" not in kb:  # zombie: no memory left to report
        return None
    return Sample(t, cpu_s, kb["VmRSS"], kb.get("VmHWM", 0))


def read_machine(t: float) -> Sample:
    """CPU time every process on the machine was busy (all cores), as a Sample: other
    engineers' jobs share these cores, and their load explains stalls that ours do not."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user..steal; guest time is already inside user
    return Sample(t, busy / _CLK_TCK, 0, 0)


def bracket(samples: Sequence[Sample], start: float, end: float) -> tuple[Sample, Sample] | None:
    """The last sample at/before start and the first at/after end.

    Samples are a second apart, so a window is widened to the samples bracketing it (by under
    a second each side) rather than narrowed to none for short windows."""
    if len(samples) < 2:
        return None
    times = [s.t for s in samples]
    i = max(0, bisect.bisect_right(times, start) - 1)
    j = min(len(samples) - 1, bisect.bisect_left(times, end))
    if samples[j].t - samples[i].t <= 0:
        return None
    return samples[i], samples[j]


def cpu_percent(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """CPU % of one core over [start, end] (widened to the bracketing samples)."""
    pair = bracket(samples, start, end)
    if pair is None:
        return None
    a, z = pair
    return 100.0 * (z.cpu_s - a.cpu_s) / (z.t - a.t)


# ---------------------------------------------------------------------------------- bronze
def _to_us(value: Any) -> int:
    if isinstance(value, dt.datetime):  # fastavro applies timestamp-micros itself
        return (value - _EPOCH) // dt.timedelta(microseconds=1)
    return int(value)


def _iter_projected(path: Path, wanted: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Records of one Avro file reduced to `wanted` fields: the reader skips the level arrays
    instead of building millions of dicts (a 5,000-level snapshot is 10,000 of them)."""
    with path.open("rb") as fo:
        writer_schema = fastavro.reader(fo).writer_schema
        assert isinstance(writer_schema, dict)  # a record schema: our bronze files
        fields = [f for f in writer_schema["fields"] if f["name"] in wanted]
        fo.seek(0)
        projected = {"type": "record", "name": writer_schema["name"], "fields": fields}
        for rec in fastavro.reader(fo, reader_schema=projected):
            assert isinstance(rec, dict)
            yield rec


def _lane_files(data_root: Path, lane: str, symbol: str, burst_id: str) -> list[Path]:
    """This burst's final files ('{burst}-{seq}.avro') of one stream: a kept data root may hold
    earlier bursts, and readers must ignore names not ending in .avro (temporaries)."""
    base = data_root / stream_prefix(lane, VENUE, symbol)
    if not base.exists():
        return []
    return sorted(
        p for p in base.rglob("*.avro") if is_final(p.name) and burst_id_of(p.name) == burst_id
    )


@dataclass
class SymbolBronze:
    ids: set[tuple[int, int]] = field(default_factory=set)  # distinct (U, u) received
    lags_us: list[tuple[int, int]] = field(default_factory=list)  # (ingest_us, ingest - E)
    first_sync_us: int | None = None  # response time of the first snapshot the book used
    snapshots: int = 0


def read_bronze(data_root: Path, symbols: Sequence[str], burst_id: str) -> dict[str, SymbolBronze]:
    out: dict[str, SymbolBronze] = {}
    for symbol in symbols:
        sb = SymbolBronze()
        for path in _lane_files(data_root, "diffs", symbol, burst_id):
            wanted = ("first_update_id", "last_update_id", "event_ts", "ingest_ts")
            for rec in _iter_projected(path, wanted):
                key = (rec["first_update_id"], rec["last_update_id"])
                if key in sb.ids:
                    continue
                sb.ids.add(key)
                ingest = _to_us(rec["ingest_ts"])
                sb.lags_us.append((ingest, ingest - _to_us(rec["event_ts"])))
        for path in _lane_files(data_root, "snapshots", symbol, burst_id):
            for rec in _iter_projected(path, ("response_ts",)):
                sb.snapshots += 1
                ts = _to_us(rec["response_ts"])
                sb.first_sync_us = ts if sb.first_sync_us is None else min(sb.first_sync_us, ts)
        out[symbol] = sb
    return out


# ---------------------------------------------------------------------------------- drops
@dataclass(frozen=True)
class DropCount:
    """One symbol: the exchange's sent log against the client's diff lane."""

    sent: int  # distinct u the exchange dispatched while the capture was subscribed
    received: int  # distinct (U, u) in the bronze diff lane
    in_span: int  # sent with first received u <= u <= last received u
    missing: int  # sent in span, absent from the diff lane: dropped by the client
    before: int  # sent before the first event the client kept (should be 0)
    after: int  # sent after the last one: in flight when the burst stopped reading
    unknown: int  # received but never sent (must be 0: else the comparison is broken)
    runs: int = 0  # stretches of consecutive missing events (one per incident)
    longest: int = 0  # events in the longest such stretch


def count_drops(sent_u: Iterable[int], received: set[tuple[int, int]]) -> DropCount:
    sent = set(sent_u)
    got = {u for _, u in received}
    if not got:
        return DropCount(len(sent), 0, 0, 0, 0, len(sent), 0)
    lo, hi = min(got), max(got)
    in_span = {u for u in sent if lo <= u <= hi}
    runs = longest = current = 0
    for u in sorted(in_span):
        if u in got:
            current = 0
            continue
        runs += current == 0
        current += 1
        longest = max(longest, current)
    return DropCount(
        sent=len(sent),
        received=len(received),
        in_span=len(in_span),
        missing=len(in_span - got),
        before=sum(1 for u in sent if u < lo),
        after=sum(1 for u in sent if u > hi),
        unknown=len(got - sent),
        runs=runs,
        longest=longest,
    )


def fetch_sent(rest_url: str, symbol: str) -> list[int]:
    with urllib.request.urlopen(f"{rest_url}/sim/sent?symbol={symbol}", timeout=30) as resp:
        return [int(u) for u in json.loads(resp.read())["u"]]


# ---------------------------------------------------------------------------------- py-spy
@dataclass(frozen=True)
class ProfileTop:
    samples: int  # non-idle samples (py-spy drops those of threads waiting in epoll)
    window: tuple[float, float]  # seconds since the capture started
    rate: int
    own: list[tuple[str, int]]  # function, samples where it was the leaf
    inclusive: list[tuple[str, int]]  # project function, samples where it was on the stack
    packages: list[tuple[str, int]]  # own samples by package (asyncio, websockets, ...)
    cpu_percent: float | None  # py-spy's own CPU while it sampled


_FRAME_RE = re.compile(r"(.*) \((.*):(\d+)\)$")
# Where a file's importable path starts: after site-packages, the checkout, or the stdlib dir.
_PATH_ROOT_RE = re.compile(r".*(?:site-packages/|/lib/python3\.\d+/)")


def _short_frame(frame: str) -> str:
    """ "func (/venv/lib/python3.11/site-packages/pkg/mod.py:12)" -> "func (pkg/mod.py:12)"."""
    m = _FRAME_RE.match(frame)
    if not m:
        return frame
    name, path, line = m.groups()
    if path.startswith(str(ROOT) + "/"):
        path = path[len(str(ROOT)) + 1 :]
    else:
        path = _PATH_ROOT_RE.sub("", path, count=1)
    return f"{name} ({path}:{line})"


def _package(frame: str) -> str:
    m = _FRAME_RE.match(frame)
    if not m:
        return frame
    path = m.group(2)
    if path.startswith("orderbook_pipeline/"):  # the project's own modules, one by one
        return path.rsplit(".", 1)[0]
    return path.split("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]


def parse_raw_profile(text: str, top: int = 15) -> ProfileCounts:
    """py-spy `--format raw` (collapsed stacks, one "frame;frame;... count" a line)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for f in set(frames):  # recursion must not count a sample twice
            inclusive[f] += n
    packages: Counter[str] = Counter()
    for frame, n in own.items():
        packages[_package(frame)] += n
    project = Counter({f: n for f, n in inclusive.items() if "(orderbook_pipeline/" in f})
    return ProfileCounts(
        total, own.most_common(top), project.most_common(top), packages.most_common(top)
    )


@dataclass(frozen=True)
class ProfileCounts:
    samples: int
    own: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]  # the project's functions only: the rest is the loop
    packages: list[tuple[str, int]]


# ---------------------------------------------------------------------------------- run
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
        budget_us = 0.25 * 1e6 / expected_rate  # 25% of a core spread over every event
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
                f"live capture CPU, {n} symbols",
                cpu_steady,
                "% of one core",
                "< 25",
                cpu_steady is not None and cpu_steady < 25,
                f"{window}, {synced}; whole burst {cpu_whole:.1f}% "
                f"(rusage, incl. start-up and bootstrap){profiled}"
                + (f"; py-spy itself {spy_cpu:.1f}%" if spy_cpu is not None else ""),
            ),
            fig(
                "live capture CPU per event",
                cost[0] if cost else None,
                "µs/event",
                f"< {budget_us:.0f} (25% of a core at {expected_rate:.0f} events/s)",
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
                "< 50",
                lag.get("p95") is not None and lag["p95"] < 50,
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
                f"drop_rate_ppm {self.summary.get('drop_rate_ppm')} (events never applied "
                "to an in-sync book, mostly buffered during bootstrap)",
            ),
            fig(
                "live capture peak RSS",
                peak_kb / 1024,
                "MB",
                "< 150",
                peak_kb / 1024 < 150,
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


# ---------------------------------------------------------------------------------- processes
def _terminate(proc: subprocess.Popen[Any] | None, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL: nothing this harness started may outlive it."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _start_simulator(
    s: LiveSettings, symbols: list[str], logs: Path
) -> tuple[subprocess.Popen[bytes], str, float]:
    """The exchange on a free loopback port (it binds port 0 and logs the one it got)."""
    log_path = logs / "simulator.log"
    t0 = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "orderbook_pipeline.cli",
        "simulate",
        "--venue",
        VENUE,
        "--port",
        "0",
        "--symbols",
        ",".join(symbols),
        "--interval-ms",
        str(s.interval_ms),
        "--levels",
        str(s.levels),
        "--seed",
        str(s.seed),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
    try:
        while True:
            m = _READY_RE.search(log_path.read_text(errors="replace"))
            if m:
                url = f"http://127.0.0.1:{m.group(1)}"
                fetch_sent(url, symbols[0])  # answers only once the server loop runs
                return proc, url, time.monotonic() - t0
            if proc.poll() is not None:
                raise RuntimeError(f"the exchange exited ({proc.returncode}):\n{_tail(log_path)}")
            if time.monotonic() - t0 > s.start_timeout_s:
                raise TimeoutError(f"the exchange did not start:\n{_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:
        _terminate(proc)
        raise


def _capture_cmd(
    s: LiveSettings, symbols: list[str], url: str, data_root: Path, burst_id: str
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "orderbook_pipeline.cli",
        "capture",
        "--venue",
        VENUE,
        "--symbols",
        ",".join(symbols),
        "--duration",
        str(s.duration_s),
        "--depths",
        s.depths,
        "--data-root",
        str(data_root),
        "--ws-url",
        url.replace("http://", "ws://"),
        "--rest-url",
        url,
        "--burst-id",
        burst_id,
        # The file roll as issue 4 measured it (it follows the configuration since issue 5).
        "--file-seconds",
        "900",
    ]
    if s.lanes != "all":  # every lane the venue feeds is the capture's default
        cmd += ["--lanes", s.lanes]
    if s.snapshot_limit is not None:
        cmd += ["--snapshot-limit", str(s.snapshot_limit)]
    return cmd


def _pyspy() -> str:
    """The py-spy next to this interpreter (a venv that is not activated), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    return found


def _wait4_nohang(pid: int) -> tuple[int, Any] | None:
    got, status, usage = os.wait4(pid, os.WNOHANG)
    return (status, usage) if got == pid else None


def measure(settings: LiveSettings, log: Any = None) -> LiveRun:
    """Run the exchange and one capture burst, sample both, and count drops from outside."""
    s = settings
    say = log or (lambda msg: print(f"[live] {msg}", file=sys.stderr, flush=True))
    symbols = symbol_names(s.symbols)
    work = Path(tempfile.mkdtemp(prefix="obp-live-"))
    data_root = s.keep_dir or work / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    sim: subprocess.Popen[bytes] | None = None
    cap: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        say(f"starting the exchange: {len(symbols)} symbols, {s.levels} levels, {s.interval_ms} ms")
        sim, url, sim_start_s = _start_simulator(s, symbols, work)
        say(f"exchange ready at {url} after {sim_start_s:.1f} s; capture for {s.duration_s:.0f} s")

        out_path, err_path = work / "capture.out", work / "capture.log"
        # The production shape (UTC start, random suffix); named here so that only this
        # burst's files are read back from a kept data root.
        burst_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start_us = time.time_ns() // 1000
            t0 = time.monotonic()
            cap = subprocess.Popen(
                _capture_cmd(s, symbols, url, data_root, burst_id), cwd=ROOT, stdout=out, stderr=err
            )
        capture: list[Sample] = []
        simulator: list[Sample] = []
        pyspy: list[Sample] = []
        machine: list[Sample] = []
        raw_profile = work / "pyspy.txt"
        spy_window = (s.steady_after_s, s.duration_s - 3.0)
        next_t, exited = 0.0, None
        while exited is None:
            t = time.monotonic() - t0
            for pid, sink in ((cap.pid, capture), (sim.pid, simulator)):
                if (x := read_proc(pid, t)) is not None:
                    sink.append(x)
            if spy is not None and (x := read_proc(spy.pid, t)) is not None:
                pyspy.append(x)
            machine.append(read_machine(t))
            if (
                s.profile
                and spy is None
                and spy_window[1] - spy_window[0] >= 5
                and t >= spy_window[0]
            ):
                with (work / "pyspy.log").open("wb") as spy_log:
                    spy = subprocess.Popen(
                        [
                            _pyspy(),
                            "record",
                            "--pid",
                            str(cap.pid),
                            "--duration",
                            str(int(spy_window[1] - spy_window[0])),
                            "--rate",
                            str(s.profile_rate),
                            "--nonblocking",  # never pause the capture: its lag is under test
                            "--function",
                            "--format",
                            "raw",
                            "-o",
                            str(raw_profile),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=spy_log,
                    )
                say(f"py-spy attached to the capture for {int(spy_window[1] - spy_window[0])} s")
            exited = _wait4_nohang(cap.pid)
            if exited is None:
                next_t += 1.0
                time.sleep(max(0.0, next_t - (time.monotonic() - t0)))
            if time.monotonic() - t0 > s.duration_s + 120:
                raise TimeoutError(f"the capture did not end:\n{_tail(err_path)}")
        wall_s = time.monotonic() - t0
        status, usage = exited
        cap.returncode = os.waitstatus_to_exitcode(status)
        if cap.returncode != 0:
            raise RuntimeError(
                f"the capture failed ({cap.returncode}):\n{_tail(err_path)}\n{_tail(out_path)}"
            )
        lines = [ln for ln in out_path.read_text().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"the capture printed no summary:\n{_tail(err_path)}")
        summary = json.loads(lines[-1])
        say(f"capture done in {wall_s:.1f} s: {summary.get('events')} events; reading bronze")

        profile = None
        if spy is not None:
            spy.wait(30)
            if raw_profile.exists():
                counts = parse_raw_profile(raw_profile.read_text())
                profile = ProfileTop(
                    samples=counts.samples,
                    window=spy_window,
                    rate=s.profile_rate,
                    own=counts.own,
                    inclusive=counts.inclusive,
                    packages=counts.packages,
                    cpu_percent=cpu_percent(pyspy, 0, wall_s),
                )
            else:
                say(f"py-spy wrote nothing:\n{_tail(work / 'pyspy.log')}")

        # The exchange keeps running (with no subscriber its sent log no longer grows).
        bronze = read_bronze(data_root, symbols, burst_id)
        drops = {sym: count_drops(fetch_sent(url, sym), bronze[sym].ids) for sym in symbols}
        return LiveRun(
            settings=s,
            symbols=symbols,
            summary=summary,
            wall_s=wall_s,
            rusage_cpu_s=usage.ru_utime + usage.ru_stime,
            rusage_maxrss_kb=usage.ru_maxrss,
            capture=capture,
            simulator=simulator,
            pyspy=pyspy,
            machine=machine,
            bronze=bronze,
            drops=drops,
            start_us=start_us,
            simulator_start_s=sim_start_s,
            profile=profile,
        )
    finally:
        _terminate(spy)
        _terminate(cap)
        _terminate(sim)
        if s.keep_dir is not None:  # logs and the raw profile next to the kept data
            for name in ("simulator.log", "capture.log", "capture.out", "pyspy.txt", "pyspy.log"):
                if (work / name).exists():
                    shutil.copy2(work / name, s.keep_dir / name)
        shutil.rmtree(work, ignore_errors=True)


def figures(
    quick: bool = False,
    *,
    symbols: int | None = None,
    duration_s: float | None = None,
    snapshot_limit: int | None = None,
    profile: bool = False,
    run_out: list[LiveRun] | None = None,
) -> list[dict[str, Any]]:
    """The live figures (benchmarks/run.py calls figures(quick)); run_out receives the run."""
    settings = LiveSettings.for_mode(
        quick,
        symbols=symbols,
        duration_s=duration_s,
        snapshot_limit=snapshot_limit,
        profile=profile or None,
    )
    run = measure(settings)
    if run_out is not None:
        run_out.append(run)
    return run.figures()


# ---------------------------------------------------------------------------------- report
def render(run: LiveRun) -> str:
    out = [
        "| figure | value | unit | target | met | notes |",
        "|---|---:|---|---|---|---|",
    ]
    for f in run.figures():
        met = "MET" if f["met"] else "NOT MET"
        out.append(
            f"| {f['name']} | {f['value']} | {f['unit']} | {f['target']} | {met} | {f['notes']} |"
        )
    out += [
        "",
        "Timeline: CPU % of one core (capture, exchange, all other processes on the machine), "
        "capture peak RSS, books in sync, diff-lane events and lag p95, longest hole in "
        "receive times and in E:",
        f"{'from-to s':>11} {'capture':>8} {'exchange':>9} {'others':>7} {'RSS MB':>7} {'in sync':>8} "
        f"{'events':>8} {'lag p95 ms':>11} {'recv gap ms':>12} {'E gap ms':>9}",
    ]
    for r in run.timeline():
        out.append(
            f"{r['from_s']:>5}-{r['to_s']:<5} {_fmt(r['capture_cpu']):>8} "
            f"{_fmt(r['exchange_cpu']):>9} {_fmt(r['others_cpu']):>7} "
            f"{_fmt(r['capture_rss_mb'], 0):>7} {r['in_sync']:>8} "
            f"{r['events']:>8} {_fmt(r['lag_p95_ms']):>11} {_fmt(r['recv_gap_ms'], 0):>12} "
            f"{_fmt(r['e_gap_ms'], 0):>9}"
        )
    # The exchange steps its markets in symbol order and stamps one E per tick, and the client
    # reads frames in that order: first vs last symbols separates the two sides' share of lag.
    k = max(1, len(run.symbols) // 10)
    a, _ = run.steady_window
    lo = run.start_us + int(a * 1e6)

    def p50(group: Sequence[str]) -> str:
        lags = sorted(lag / 1000 for g in group for i, lag in run.bronze[g].lags_us if i >= lo)
        return f"p50 {_fmt(_pct(lags, 0.5))} / p95 {_fmt(_pct(lags, 0.95))} ms"

    out += [
        "",
        f"Diff-lane lag by position in the exchange's tick: first {k} symbols "
        f"{p50(run.symbols[:k])}; last {k} symbols {p50(run.symbols[-k:])}",
        f"Capture summary: {json.dumps({k: v for k, v in run.summary.items() if k != 'burst_id'})}",
    ]
    worst = sorted(run.drops.items(), key=lambda kv: -kv[1].missing)[:5]
    if worst and worst[0][1].missing:
        out.append("Symbols with client drops: " + ", ".join(f"{s} {d.missing}" for s, d in worst))
    if run.profile is not None:
        p = run.profile
        # py-spy counts a thread that is runnable but waiting for a core as active, so its
        # sample counts overstate CPU on a busy machine: shares are of the profile, and the
        # "core %" column scales them by the CPU /proc measured over the same window.
        cpu = cpu_percent(run.capture, *p.window) or 0.0
        share = 100.0 / max(1, p.samples)
        out += [
            "",
            f"py-spy, capture process, {p.window[0]:.0f}-{p.window[1]:.0f} s at {p.rate} Hz "
            f"(--nonblocking): {p.samples} non-idle samples; capture CPU over the window "
            f"{cpu:.1f}% of one core; py-spy itself {_fmt(p.cpu_percent)}%. Time in C "
            "extensions (orjson, fastavro, numpy) is charged to the Python function calling them.",
            f"{'share %':>8} {'core %':>7} {'incl %':>7}  top {len(p.own)} functions by own time",
        ]
        incl = dict(p.inclusive)
        for name, n in p.own:
            inc = incl.get(name)
            out.append(
                f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f} "
                f"{_fmt(inc * share if inc else None):>7}  {name}"
            )
        out += ["", f"{'share %':>8} {'core %':>7}  own time by package / project module"]
        for name, n in p.packages:
            out.append(f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f}  {name}")
        out += ["", f"{'incl %':>8} {'core %':>7}  project functions by inclusive time"]
        for name, n in p.inclusive:
            out.append(f"{n * share:>8.1f} {n * share * cpu / 100:>7.2f}  {name}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="40 symbols for 20 s")
    parser.add_argument("--symbols", type=int, help="number of symbols (default 200; quick 40)")
    parser.add_argument("--duration", type=float, help="burst seconds (default 300; quick 20)")
    parser.add_argument("--snapshot-limit", type=int, help="default: the capture's (5000 on spot)")
    parser.add_argument("--lanes", help="comma-separated, or 'all' (default l2,diffs)")
    parser.add_argument("--steady-after", type=float, help="seconds (default 15; quick 8)")
    parser.add_argument("--profile", action="store_true", help="py-spy the steady phase")
    parser.add_argument("--keep", type=Path, help="data root to use and keep")
    parser.add_argument("--json", type=Path, help="also write the figures and timeline here")
    args = parser.parse_args(argv)
    settings = LiveSettings.for_mode(
        args.quick,
        symbols=args.symbols,
        duration_s=args.duration,
        snapshot_limit=args.snapshot_limit,
        lanes=args.lanes,
        steady_after_s=args.steady_after,
        profile=args.profile or None,
        keep_dir=args.keep,
    )
    run = measure(settings)
    print(render(run), flush=True)
    if args.json:
        payload = {
            "settings": {k: str(v) for k, v in settings.__dict__.items()},
            "figures": run.figures(),
            "timeline": run.timeline(),
            "summary": run.summary,
            "profile": run.profile.__dict__ if run.profile else None,
            "drops": {sym: d.__dict__ for sym, d in run.drops.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
