"""The stages after capture: silver compaction of one symbol-hour, and the 5 s mart of a day.

Input: one realistic symbol-hour of bronze (BTCUSDT, spot, 10 events/s: 36,000 events), written
here with fastavro and the lane schemas of lanes/ (not through the capture code):
the diffs come from the bundled exchange's market model (`simulator.market.Market`, median 30
changes an event, ~40 [px, qty] pairs), and the L2 records of depths 10, 20 and 50 are the
model's true book after each event. Files roll every 15 minutes and hold one Avro block per
second, as BronzeWriter writes them. The hour is generated once (~30 s) and cached under
$OBP_BENCH_DIR (default /tmp/obp-bench); the mart's day is that hour's silver depth-20 file
shifted to 24 consecutive hours (864,000 records).

Every measurement runs in a fresh process (`--child STAGE`), so its peak RSS (VmHWM) is the
stage's own; the figure is the peak minus the RSS after imports. CPU is the process's CPU time
(all threads).

- compaction: compact_l2 and compact_diffs of the hour, run side by side as Dagster's
  multiprocess executor runs the two silver assets; rows/s over every bronze row read (wall
  time of the slower process; the notes add rows per CPU second, which a loaded machine
  flatters less). compact_l2 writes each depth on a thread while the next is decoded.
- old path: the same through fastavro dicts -> Table.from_pylist (what silver did before).
- write floor: only the Parquet writes of that compaction's output, on one core (rows per
  CPU second): what any compaction of this silver format costs at least.
- mart: build_mart_partition for the day's 24 hours into a fresh DuckDB file.

    python -m benchmarks.stages [--quick]      # print the figures as a table
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

VENUE, SYMBOL = "binance-spot", "BTCUSDT"
HOUR0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, µs
HOUR_US = 3_600_000_000
MART_DEPTH = 20
GENERATOR = 1  # bump when the generated files change: cached inputs are keyed by it
COMPACTION_TARGET_ROWS_S = 300_000
COMPACTION_TARGET_MB = 300
MART_TARGET_CPU_S = 2.0
ROUNDS = 3  # compaction runs of the full benchmark: the median is reported (shared machines)


@dataclass(frozen=True)
class HourSpec:
    """Everything the generated bronze depends on (and so its cache key)."""

    events: int = 36_000  # one hour at 10 events/s
    interval_ms: int = 100
    depths: tuple[int, ...] = (10, 20, 50)
    seed: int = 1
    median_changes: int = 30
    events_per_file: int = 9_000  # files roll every 15 minutes
    events_per_block: int = 10  # one Avro block a second
    mart_hours: int = 24

    def key(self) -> str:
        text = json.dumps({**dataclasses.asdict(self), "generator": GENERATOR}, sort_keys=True)
        return f"stages-{self.events}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


FULL = HourSpec()
QUICK = HourSpec(events=1_200, events_per_file=300, mart_hours=4)


def bench_dir() -> Path:
    return Path(os.environ.get("OBP_BENCH_DIR", "/tmp/obp-bench"))


def log(msg: str) -> None:
    print(f"[stages] {msg}", file=sys.stderr, flush=True)


# -- input: one symbol-hour of bronze --------------------------------------------------------


class _Lanes:
    """One open Avro writer per lane (and depth), rolled every events_per_file events."""

    def __init__(self, root: Path, spec: HourSpec) -> None:
        self.root, self.spec = root, spec
        self.open: dict[tuple[str, int | None], tuple[Any, Any]] = {}

    def roll(self, seq: int) -> None:
        from fastavro.write import Writer

        from orderbook_pipeline.lanes.registry import LANES
        from orderbook_pipeline.storage.layout import Partition

        self.close()
        lanes: list[tuple[str, int | None]] = [("l2", d) for d in self.spec.depths]
        lanes += [("diffs", None), ("snapshots", None)]
        for lane, depth in lanes:
            rel = Partition(lane, VENUE, SYMBOL, HOUR0, depth).bronze_file("bench", seq)
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "wb")  # noqa: SIM115 - closed in close()
            # sync_interval: BronzeWriter's block size bound (bronze_writer.BLOCK_BYTES).
            self.open[(lane, depth)] = (fh, Writer(fh, LANES[lane].parsed, "snappy", 16_000))

    def write(self, lane: str, depth: int | None, record: dict[str, Any]) -> None:
        self.open[(lane, depth)][1].write(record)

    def flush(self) -> None:
        for _, writer in self.open.values():
            writer.flush()

    def close(self) -> None:
        for fh, writer in self.open.values():
            writer.flush()
            fh.close()
        self.open = {}


def _l2_record(ts: int, ev: Any, depth: int, bids: list[Any], asks: list[Any]) -> dict[str, Any]:
    b, a = bids[:depth], asks[:depth]
    mid = (b[0][0] + a[0][0]) / 2
    bq, aq = sum(q for _, q in b), sum(q for _, q in a)
    return {
        "venue": VENUE,
        "symbol": SYMBOL,
        "event_ts": ts,
        "ingest_ts": ts + 1_500,
        "first_update_id": ev.first_update_id,
        "last_update_id": ev.final_update_id,
        "prev_update_id": None,
        "depth": depth,
        "levels": [{"side": "bid", "px": p, "qty": q} for p, q in b]
        + [{"side": "ask", "px": p, "qty": q} for p, q in a],
        "mid": mid,
        "spread_bps": (a[0][0] - b[0][0]) / mid * 1e4,
        "imbalance": (bq - aq) / (bq + aq),
        "gap_detected": False,
        "recovered": False,
        "burst_id": "bench",
    }


def _snapshot_record(market: Any, ts: int, reason: str) -> dict[str, Any]:
    body = market.snapshot(1000)
    return {
        "venue": VENUE,
        "symbol": SYMBOL,
        "last_update_id": body["lastUpdateId"],
        "request_ts": ts - 150_000,
        "response_ts": ts,
        "limit": 1000,
        "used_weight_1m": 50,
        "bids": [{"px": p, "qty": q} for p, q in body["bids"]],
        "asks": [{"px": p, "qty": q} for p, q in body["asks"]],
        "reason": reason,
        "burst_id": "bench",
    }


def _generate_hour(spec: HourSpec, root: Path) -> dict[str, Any]:
    from orderbook_pipeline.simulator.market import Market
    from orderbook_pipeline.venues import BINANCE_SPOT

    market = Market(
        BINANCE_SPOT, SYMBOL, seed=spec.seed, median_changes=spec.median_changes, history_events=1
    )
    lanes = _Lanes(root, spec)
    pairs = 0
    deepest = max(spec.depths)
    try:
        for i in range(spec.events):
            if i % spec.events_per_file == 0:
                lanes.roll(i // spec.events_per_file)
            ms = HOUR0 // 1000 + 1 + i * spec.interval_ms
            ts = ms * 1000
            if i % spec.events_per_file == 0:  # each file opens with a (re)sync snapshot
                lanes.write("snapshots", None, _snapshot_record(market, ts, "verify"))
            ev = market.step(ms)
            p = ev.payload
            pairs += len(p["b"]) + len(p["a"])
            diff = {
                "venue": VENUE,
                "symbol": SYMBOL,
                "event_ts": ts,
                "transaction_ts": None,
                "ingest_ts": ts + 1_500,
                "first_update_id": ev.first_update_id,
                "last_update_id": ev.final_update_id,
                "prev_update_id": None,
                "bids": [{"px": px, "qty": q} for px, q in p["b"]],
                "asks": [{"px": px, "qty": q} for px, q in p["a"]],
                "burst_id": "bench",
            }
            lanes.write("diffs", None, diff)
            top_b, top_a = market.true_book(ev.final_update_id, deepest)
            bids = [(float(px), float(q)) for px, q in top_b]
            asks = [(float(px), float(q)) for px, q in top_a]
            for depth in spec.depths:
                lanes.write("l2", depth, _l2_record(ts, ev, depth, bids, asks))
            if (i + 1) % spec.events_per_block == 0:
                lanes.flush()
    finally:
        lanes.close()
    return {"events": spec.events, "pairs_per_event": round(pairs / spec.events, 1)}


def _prepare_day(spec: HourSpec, bronze_root: Path, out: Path) -> None:
    """The mart's input: the hour's silver depth-20 table repeated over mart_hours hours."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from orderbook_pipeline.compaction.silver import (
        L2_SCHEMA,
        compact_l2,
        read_silver_l2,
        write_parquet,
    )
    from orderbook_pipeline.storage.layout import Partition
    from orderbook_pipeline.storage.store import LocalStore

    scratch = Path(tempfile.mkdtemp(prefix=".day-", dir=out))
    try:
        _link_tree(bronze_root / "bronze", scratch / "bronze")
        compact_l2(LocalStore(str(scratch)), VENUE, SYMBOL, HOUR0)
        hour = read_silver_l2(LocalStore(str(scratch)), VENUE, SYMBOL, HOUR0, MART_DEPTH)
    finally:
        shutil.rmtree(scratch)
    store = LocalStore(str(out))
    span = int(pc.max(hour["last_update_id"]).as_py()) - int(
        pc.min(hour["first_update_id"]).as_py()
    )
    for h in range(spec.mart_hours):
        shifted = hour
        for name in ("event_ts", "ingest_ts"):
            us = pc.add(hour[name].cast(pa.int64()), h * HOUR_US).cast(L2_SCHEMA.field(name).type)
            shifted = shifted.set_column(shifted.schema.get_field_index(name), name, us)
        for name in ("first_update_id", "last_update_id"):
            ids = pc.add(hour[name], h * (span + 1))
            shifted = shifted.set_column(shifted.schema.get_field_index(name), name, ids)
        rel = Partition("l2", VENUE, SYMBOL, HOUR0 + h * HOUR_US, MART_DEPTH).silver_file()
        write_parquet(store, rel, shifted)


def _cached(folder: Path, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Build `folder` once (in a temporary sibling, then renamed); return its stats."""
    stats_path = folder / "stats.json"
    if not stats_path.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            (tmp / "stats.json").write_text(json.dumps(build(tmp)))
            tmp.rename(folder)
        except OSError:
            if not stats_path.exists():  # not a lost race: a real failure
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    stats: dict[str, Any] = json.loads(stats_path.read_text())
    return stats


def ensure_inputs(spec: HourSpec) -> tuple[Path, Path, dict[str, Any]]:
    """(bronze hour root, silver day root, generation stats), generated unless cached."""
    hour_dir = bench_dir() / spec.key() / "hour"
    day_dir = bench_dir() / spec.key() / "day"

    def build_hour(tmp: Path) -> dict[str, Any]:
        log(f"generating {spec.events} events of bronze into {hour_dir} (~{spec.events // 1000} s)")
        return _generate_hour(spec, tmp)

    def build_day(tmp: Path) -> dict[str, Any]:
        log(f"preparing {spec.mart_hours} hours of silver depth {MART_DEPTH} in {day_dir}")
        _prepare_day(spec, hour_dir, tmp)
        return {"hours": spec.mart_hours}

    stats = _cached(hour_dir, build_hour)
    _cached(day_dir, build_day)
    return hour_dir, day_dir, stats


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a tree by hard links (a fresh store root per run costs no data copy)."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


# -- measuring, in a fresh process -----------------------------------------------------------


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    found = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line.split(":")[0]] = int(line.split()[1]) / 1024
    peak = found.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return found.get("VmRSS", peak), peak


@contextlib.contextmanager
def _measured(out: dict[str, Any]) -> Iterator[None]:
    base, _ = _rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    out["wall_s"] = time.perf_counter() - wall
    out["cpu_s"] = time.process_time() - cpu
    out["rss_base_mb"], out["rss_peak_mb"] = base, _rss_mb()[1]
    out["peak_mb"] = out["rss_peak_mb"] - base


def _old_compact(store: Any, lane: str, depth: int | None) -> tuple[int, int]:
    """Silver as it was: fastavro records -> list of dicts -> Table.from_pylist."""
    import fastavro
    import pyarrow as pa

    from orderbook_pipeline.compaction import silver
    from orderbook_pipeline.storage.layout import Partition

    part = Partition(lane, VENUE, SYMBOL, HOUR0, depth)
    paths = store.list_files(part.directory("bronze") + "/", suffix=".avro")
    rows: list[dict[str, Any]] = []
    for rel in paths:
        rows.extend(
            cast(Iterator[dict[str, Any]], fastavro.reader(io.BytesIO(store.read_bytes(rel))))
        )
    schema = silver.L2_SCHEMA if lane == "l2" else silver.DIFF_SCHEMA
    key, pref = (
        (silver.L2_KEY, silver.L2_PREFERENCE)
        if lane == "l2"
        else (silver.DIFF_KEY, silver.DIFF_PREFERENCE)
    )
    table = silver.deduplicate(pa.Table.from_pylist(rows, schema=schema), key, pref)
    silver.write_parquet(store, part.silver_file(), table, source_files=paths)
    return len(rows), table.num_rows


def _child_compaction(root: str, lane: str, old: bool) -> dict[str, Any]:
    import numpy  # noqa: F401 - imported before the baseline RSS, as a Dagster op has them
    import pyarrow.parquet  # noqa: F401

    from orderbook_pipeline.compaction.silver import compact_diffs, compact_l2
    from orderbook_pipeline.storage.store import LocalStore

    store = LocalStore(root)
    depths = sorted(int(p.name.split("=")[1]) for p in Path(root).glob("bronze/l2/*/*/*/*/depth=*"))
    # Start together with the other lane's process (see _compaction_pair).
    print("ready", flush=True)
    sys.stdin.readline()
    out: dict[str, Any] = {}
    with _measured(out):
        if old:
            lanes = [("l2", d) for d in depths] if lane == "l2" else [("diffs", None)]
            done = [_old_compact(store, name, d) for name, d in lanes]
        elif lane == "l2":
            results = compact_l2(store, VENUE, SYMBOL, HOUR0).values()
            done = [(r.rows_in, r.rows_out) for r in results]
        else:
            diffs = compact_diffs(store, VENUE, SYMBOL, HOUR0)
            done = [(diffs.rows_in, diffs.rows_out)] if diffs is not None else []
    out["rows_in"] = sum(i for i, _ in done)
    out["rows_out"] = [o for _, o in done]
    return out


def _child_write(root: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from orderbook_pipeline.compaction.silver import write_parquet
    from orderbook_pipeline.storage.store import LocalStore

    files = sorted(str(p.relative_to(root)) for p in Path(root).glob("silver/**/*.parquet"))
    tables = [pq.read_table(os.path.join(root, rel)) for rel in files]
    store = LocalStore(os.path.join(root, "rewrite"))
    out: dict[str, Any] = {}
    with _measured(out):
        for rel, table in zip(files, tables, strict=True):
            write_parquet(store, rel, table)
    out["rows"] = sum(t.num_rows for t in tables)
    return out


def _child_mart(root: str, hours: int) -> dict[str, Any]:
    import duckdb

    from orderbook_pipeline.marts.l2_5s import build_mart_partition
    from orderbook_pipeline.storage.store import LocalStore

    store = LocalStore(root)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        conn = duckdb.connect(os.path.join(tmp, "mart.duckdb"))
        with _measured(out):
            buckets = sum(
                build_mart_partition(conn, store, VENUE, SYMBOL, HOUR0 + h * HOUR_US)
                for h in range(hours)
            )
        row = conn.execute("SELECT count(*), sum(n_updates) FROM mart_l2_5s").fetchone()
        conn.close()
    out["buckets"] = buckets
    out["mart_rows"], out["records"] = (int(row[0]), int(row[1])) if row else (0, 0)
    return out


def _child_cmd(stage: str, root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.stages",
        "--child",
        stage,
        "--root",
        str(root),
        *extra,
    ]


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _result_of(proc: subprocess.Popen[str], stage: str) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _run_child(stage: str, root: Path, *extra: str) -> dict[str, Any]:
    return _result_of(_start(_child_cmd(stage, root, *extra)), stage)


def _compaction_pair(hour_dir: Path, old: bool) -> dict[str, Any]:
    """silver_l2 and silver_diffs of the hour in two processes at once, as Dagster's default
    (multiprocess) executor runs the two assets: each imports, then both start on one signal.
    Wall time is the slower one's; peak memory is the larger process's own."""
    with tempfile.TemporaryDirectory(prefix="obp-stages-") as tmp:
        _link_tree(hour_dir / "bronze", Path(tmp) / "bronze")
        flags = ["--old"] if old else []
        procs = {
            lane: _start(_child_cmd("compaction", Path(tmp), "--lane", lane, *flags))
            for lane in ("l2", "diffs")
        }
        for lane, proc in procs.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                _result_of(proc, f"compaction {lane}")  # raises with its stderr
                raise RuntimeError(f"compaction {lane} child did not start")
        for proc in procs.values():
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        runs = {lane: _result_of(proc, f"compaction {lane}") for lane, proc in procs.items()}
        load = os.getloadavg()[0]
        # The floor under any compaction: writing the silver files alone, on one core.
        floor = None if old else _run_child("write", Path(tmp))
    l2, diffs = runs["l2"], runs["diffs"]
    return {
        "load": load,
        "write_floor": floor,
        "rows_in": l2["rows_in"] + diffs["rows_in"],
        "rows_out": l2["rows_out"] + diffs["rows_out"],
        "wall_s": max(l2["wall_s"], diffs["wall_s"]),
        "cpu_s": l2["cpu_s"] + diffs["cpu_s"],
        "peak_mb": max(l2["peak_mb"], diffs["peak_mb"]),
        "rss_base_mb": l2["rss_base_mb"],
        "lanes": runs,
    }


@dataclass
class StageResults:
    spec: HourSpec
    generation: dict[str, Any]
    compaction: dict[str, Any]
    old: dict[str, Any]
    mart: dict[str, Any]

    def expected_rows(self) -> tuple[int, list[int]]:
        """(bronze rows read, silver rows per depth then diffs) the generator wrote."""
        n = self.spec.events
        return n * (len(self.spec.depths) + 1), [n] * (len(self.spec.depths) + 1)


def run_stages(quick: bool = False) -> StageResults:
    """Generate (or find) the inputs and measure every stage, each in a fresh process."""
    spec = QUICK if quick else FULL
    hour_dir, day_dir, stats = ensure_inputs(spec)
    rounds = 1 if quick else ROUNDS
    log(f"compaction (columnar), {rounds} round(s)")
    runs = sorted((_compaction_pair(hour_dir, old=False) for _ in range(rounds)), key=_rate)
    new = {**runs[len(runs) // 2], "rounds": runs}  # the median round, and all of them
    log("compaction (old fastavro dict path)")
    old = _compaction_pair(hour_dir, old=True)
    log(f"mart over {spec.mart_hours} hours")
    mart = _run_child("mart", day_dir, "--hours", str(spec.mart_hours))
    results = StageResults(spec, stats, new, old, mart)
    check_rows(results)
    return results


def _rate(run: dict[str, Any]) -> float:
    return float(run["rows_in"] / run["wall_s"])


def check_rows(r: StageResults) -> None:
    """Every stage must have seen exactly the rows generated (else no speed is reported)."""
    rows_in, rows_out = r.expected_rows()
    for label, run in [*(("compaction", x) for x in r.compaction["rounds"]), ("old path", r.old)]:
        if run["rows_in"] != rows_in or run["rows_out"] != rows_out:
            raise RuntimeError(
                f"{label} read/wrote {run['rows_in']}/{run['rows_out']} rows, "
                f"expected {rows_in}/{rows_out}"
            )
    day = r.spec.events * r.spec.mart_hours
    if r.mart["records"] != day:
        raise RuntimeError(f"the mart saw {r.mart['records']} records, expected {day}")


def to_figures(r: StageResults) -> list[dict[str, Any]]:
    def rate(run: dict[str, Any]) -> int:
        return round(_rate(run))

    rounds = r.compaction["rounds"]
    spread = (
        f"; median of {len(rounds)} rounds [{rate(rounds[0]):,}-{rate(rounds[-1]):,} rows/s]"
        if len(rounds) > 1
        else ""
    )

    hour = (
        f"{r.compaction['rows_in']:,} bronze rows (L2 depths {','.join(map(str, r.spec.depths))}"
        f" + diffs, ~{r.generation['pairs_per_event']} pairs/event)"
    )
    figs = []
    for label, run in (("", r.compaction), (" [old: fastavro dicts -> from_pylist]", r.old)):
        figs.append(
            {
                "name": f"silver compaction, one symbol-hour{label}",
                "value": rate(run),
                "unit": "rows/s",
                "target": f">= {COMPACTION_TARGET_ROWS_S:,} rows/s",
                "met": rate(run) >= COMPACTION_TARGET_ROWS_S,
                "notes": f"{hour}; silver_l2 and silver_diffs in two processes at once: "
                f"{run['lanes']['l2']['wall_s']:.2f} s and {run['lanes']['diffs']['wall_s']:.2f} s "
                f"wall, {run['cpu_s']:.2f} s CPU in all ({run['rows_in'] / run['cpu_s']:,.0f} rows per "
                f"CPU second); machine load {run['load']:.1f} "
                f"on {os.cpu_count()} CPUs" + (spread if run is r.compaction else ""),
            }
        )
        # Memory: the worst round (never flattered by a lucky one).
        worst = max(run.get("rounds", [run]), key=lambda x: float(x["peak_mb"]))
        figs.append(
            {
                "name": f"silver compaction peak RSS{label}",
                "value": round(worst["peak_mb"], 1),
                "unit": "MB",
                "target": f"< {COMPACTION_TARGET_MB} MB",
                "met": worst["peak_mb"] < COMPACTION_TARGET_MB,
                "notes": "the larger of the two processes' own peak (VmHWM) minus its RSS after "
                f"imports: silver_l2 +{worst['lanes']['l2']['peak_mb']:.0f} MB, silver_diffs "
                f"+{worst['lanes']['diffs']['peak_mb']:.0f} MB"
                + (
                    f" (worst of {len(run['rounds'])} rounds)"
                    if len(run.get("rounds", [])) > 1
                    else ""
                ),
            }
        )
    floor = r.compaction["write_floor"]
    figs.append(
        {
            "name": "silver Parquet write alone (floor of any compaction)",
            "value": round(floor["rows"] / floor["cpu_s"]),
            "unit": "rows/s",
            "target": f">= {COMPACTION_TARGET_ROWS_S:,} rows/s",
            "met": floor["rows"] / floor["cpu_s"] >= COMPACTION_TARGET_ROWS_S,
            "notes": f"write_parquet of the hour's {floor['rows']:,} silver rows (zstd, as "
            f"compaction writes them) in {floor['cpu_s']:.2f} s CPU on one core, "
            f"{floor['wall_s']:.2f} s wall",
        }
    )
    m = r.mart
    figs.append(
        {
            "name": "mart_l2_5s, one symbol-day from silver"
            if r.spec.mart_hours == 24
            else f"mart_l2_5s, {r.spec.mart_hours} hours of one symbol from silver",
            "value": round(m["cpu_s"], 3),
            "unit": "s CPU",
            "target": f"< {MART_TARGET_CPU_S:g} s CPU",
            "met": m["cpu_s"] < MART_TARGET_CPU_S,
            "notes": f"{m['records']:,} L2 records (depth {MART_DEPTH}, {r.spec.mart_hours} "
            f"hourly partitions) -> {m['mart_rows']:,} buckets in {m['wall_s']:.2f} s wall, "
            f"peak +{m['peak_mb']:.0f} MB",
        }
    )
    return figs


def figures(quick: bool = False) -> list[dict[str, Any]]:
    """The stage figures (benchmarks/run.py calls this); see the module doc."""
    return to_figures(run_stages(quick))


def _table(figs: list[dict[str, Any]]) -> str:
    lines = ["| figure | value | unit | target | met | notes |", "|---|---:|---|---|---|---|"]
    for f in figs:
        met = "MET" if f["met"] else "NOT MET"
        lines.append(
            f"| {f['name']} | {f['value']:,} | {f['unit']} | {f['target']} | {met} | {f['notes']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small inputs (what the tests run)")
    ap.add_argument("--child", choices=("compaction", "write", "mart"), help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--old", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lane", choices=("l2", "diffs"), help=argparse.SUPPRESS)
    ap.add_argument("--hours", type=int, default=24, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "compaction":
        print(json.dumps(_child_compaction(args.root, args.lane, args.old)))
    elif args.child == "write":
        print(json.dumps(_child_write(args.root)))
    elif args.child == "mart":
        print(json.dumps(_child_mart(args.root, args.hours)))
    else:
        print(_table(figures(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
