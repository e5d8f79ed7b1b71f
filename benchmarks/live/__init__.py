"""Live capture benchmark: one capture burst against the bundled exchange, measured from outside.

    python -m benchmarks.live                     # full: 200 symbols, 300 s (about 6 minutes)
    python -m benchmarks.live --quick             # 40 symbols, 20 s
    python -m benchmarks.live --profile           # also py-spy the capture's steady phase
    python -m benchmarks.live --symbols 5 --duration 8 --snapshot-limit 1000 --keep /tmp/live

The targets (results.py): live capture of 200 symbols at 100 ms from the bundled exchange, ingest
lag p95 under 20 ms, no event dropped by the client, capture CPU at most 10% of one core with
the book lanes (`l2,diffs`) and 20% with every lane, and under 120 MB resident with 5,000-level
books. `make bench` runs both: the book lanes, then every lane.

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
exchange delays events (each event is stamped `E` when its market steps, and the markets step in
slices spread over the tick, so a slow step of the slices before is inside the measured lag) and
would make the client look slow. `python -m benchmarks.live.receive` measures the websocket
receive path alone.
"""

from __future__ import annotations

from benchmarks.live.bronze import SymbolBronze, read_bronze
from benchmarks.live.burst import every_lane_figures, figures, measure
from benchmarks.live.cli import main
from benchmarks.live.drops import DropCount, count_drops, fetch_sent
from benchmarks.live.profile import ProfileCounts, ProfileTop, parse_raw_profile
from benchmarks.live.report import render
from benchmarks.live.results import LiveRun, cpu_target_percent
from benchmarks.live.sampling import Sample, bracket, cpu_percent, read_machine, read_proc
from benchmarks.live.settings import ROOT, VENUE, LiveSettings, symbol_names

__all__ = [
    "ROOT",
    "VENUE",
    "DropCount",
    "LiveRun",
    "LiveSettings",
    "ProfileCounts",
    "ProfileTop",
    "Sample",
    "SymbolBronze",
    "bracket",
    "count_drops",
    "cpu_percent",
    "cpu_target_percent",
    "every_lane_figures",
    "fetch_sent",
    "figures",
    "main",
    "measure",
    "parse_raw_profile",
    "read_bronze",
    "read_machine",
    "read_proc",
    "render",
    "symbol_names",
]
