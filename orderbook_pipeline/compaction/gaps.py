"""Gap windows: every loss of book continuity in one hourly stream partition, with its cause.

The L2 chain is the union over all bursts of the deduplicated L2 records (each burst's smallest
depth: every depth of a burst carries the same update ids), sorted by last_update_id. Wherever two
consecutive records do not continue each other by the venue's sync rule (the same test the
capture applies, core/sync.py `chains`), the book is unknown between them: that is a window.

The cause comes from what the other lanes saw (the raw diffs of every burst, and the snapshots):

- the diff union itself is broken inside the window (ids the exchange sent that no burst got):
  - no burst's diffs span the window              -> burst_seam (no burst was running)
  - two or more bursts span it                    -> exchange_restart (independent connections
    all missed the ids the union misses, so the exchange did not deliver them)
  - one burst spans it: its first snapshot requested in [from_ts, to_ts + 60 s] has reason
    `reconnect`                                     -> reconnect, else -> sequence_gap
- the diff union is continuous (events arrived, but no burst had an in-sync book):
  - no burst spans it                             -> burst_seam (a later burst was still syncing)
  - a spanning burst's snapshot in the window took > 5 s or reported used_weight_1m >= 80 % of
    the venue's budget                            -> rate_limited
  - a spanning burst fetched two or more snapshots in the window -> stale_snapshot
  - otherwise                                      -> sequence_gap
- time holes (null update ids): no record within 10 s of the hour's start (or, for a complete
  hour, its end)                                   -> burst_seam; no bronze at all -> no_capture
- a burst found its book differed from the exchange's (book_mismatches lane): the break of its
  rebuild is `book_mismatch` whatever the above says, and the span its book may have been
  wrong is a window of its own (mismatch_windows.py)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orderbook_pipeline.compaction.mismatch_windows import BOOK_MISMATCH, Mismatches
from orderbook_pipeline.compaction.silver import (
    TS,
    bronze_files,
    deduplicate,
    l2_files_by_depth,
    read_parquet,
    read_with_positions,
    write_parquet,
)
from orderbook_pipeline.core.sync import chains
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import HOUR_US, Partition, burst_id_of
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import VENUES, SyncRule

# Causes on the exchange's side: every burst connected missed the same ids, so nothing this
# deployment did or could do lost them. A check failing on these alone is a warning, not an
# error (assets/refresh_events.py).
EXCHANGE_SIDE_CAUSES = ("exchange_restart",)
GAP_CAUSES = (
    "sequence_gap",
    "reconnect",
    "burst_seam",
    "exchange_restart",
    "rate_limited",
    "stale_snapshot",
    "no_capture",
    BOOK_MISMATCH,
)

GAP_SCHEMA = pa.schema(
    [
        pa.field("venue", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("hour_start", TS, nullable=False),
        pa.field("from_update_id", pa.int64()),
        pa.field("to_update_id", pa.int64()),
        pa.field("from_ts", TS, nullable=False),
        pa.field("to_ts", TS, nullable=False),
        pa.field("cause", pa.string(), nullable=False),
        pa.field("bursts", pa.string(), nullable=False),
    ]
)

EDGE_TOLERANCE_US = 10_000_000  # a first/last record this close to the hour's edge is no hole
RECONNECT_LOOKAHEAD_US = 60_000_000  # a reconnect snapshot may come up to 60 s after the window
SLOW_SNAPSHOT_US = 5_000_000
WEIGHT_SHARE = 0.8  # the capture paces snapshots to 80 % of the budget: at or above is throttled

# Only the columns the chain needs: the Avro decoder steps over the rest without building them
# (levels is the costly one).
L2_CHAIN = pa.schema(
    [
        ("event_ts", TS),
        ("ingest_ts", TS),
        ("first_update_id", pa.int64()),
        ("last_update_id", pa.int64()),
        ("prev_update_id", pa.int64()),
        ("gap_detected", pa.bool_()),
        ("recovered", pa.bool_()),
        ("burst_id", pa.string()),
    ]
)
DIFF_IDS = pa.schema(
    [
        ("event_ts", TS),
        ("ingest_ts", TS),
        ("first_update_id", pa.int64()),
        ("last_update_id", pa.int64()),
        ("prev_update_id", pa.int64()),
        ("burst_id", pa.string()),
    ]
)
SNAPSHOT_TIMES = pa.schema(
    [
        ("request_ts", TS),
        ("response_ts", TS),
        ("used_weight_1m", pa.int64()),
        ("reason", pa.string()),
        ("burst_id", pa.string()),
    ]
)


def gap_windows_path(venue: str, symbol: str, hour_start_us: int) -> str:
    return Partition("gap_windows", venue, symbol, hour_start_us).silver_file()


@dataclass
class _Chain:
    """Update-id chain as int64 arrays (in the table's order); prev is -1 where null."""

    first: np.ndarray
    last: np.ndarray
    prev: np.ndarray
    ts: np.ndarray
    burst: pa.ChunkedArray

    @classmethod
    def of(cls, table: pa.Table) -> _Chain:
        return cls(
            _ints(table, "first_update_id"),
            _ints(table, "last_update_id"),
            _ints(table, "prev_update_id"),
            _ints(table, "event_ts"),
            table.column("burst_id"),
        )

    def __len__(self) -> int:
        return len(self.last)

    def ids(self, i: int) -> tuple[int, int, int]:
        return int(self.first[i]), int(self.last[i]), int(self.prev[i])

    def burst_at(self, i: int) -> str:
        return str(self.burst[i].as_py())

    def links(self, rule: SyncRule) -> np.ndarray:
        """links[k]: does record k + 1 continue record k?"""
        return chains(rule, self.last[:-1], self.first[1:], self.prev[1:])


def _ints(table: pa.Table, name: str) -> np.ndarray:
    """Timestamp or integer column as int64 µs / ids (nulls as -1)."""
    column = table.column(name).cast(pa.int64()).fill_null(-1)
    return np.asarray(column.to_numpy(), np.int64)


def sorted_by_last_id(table: pa.Table) -> pa.Table:
    return table.sort_by([("last_update_id", "ascending"), ("first_update_id", "ascending")])


def first_of_burst(raw_l2: pa.Table) -> dict[str, tuple[int, int]]:
    """Each burst's first L2 record of the hour, as (event_ts, first_update_id), taken before
    dedup (the burst's own copies may have lost to another burst's)."""
    if not raw_l2.num_rows:
        return {}
    firsts = raw_l2.group_by("burst_id").aggregate(
        [("event_ts", "min"), ("first_update_id", "min")]
    )
    return {
        str(b): (int(ts), int(uid))
        for b, ts, uid in zip(
            firsts.column("burst_id").to_pylist(),
            _ints(firsts, "event_ts_min").tolist(),
            _ints(firsts, "first_update_id_min").tolist(),
            strict=True,
        )
    }


@dataclass
class GapInputs:
    """What the windows are derived from: read from bronze (`load_bronze`) or from the silver
    parts and their copies (gap_inputs.py)."""

    l2: pa.Table  # the deduplicated L2 chain (L2_CHAIN columns), sorted by last_update_id
    first_of_burst: dict[str, tuple[int, int]]  # burst -> its first (event_ts, first id)
    union: pa.Table  # the deduplicated diffs (DIFF_IDS columns)
    burst_times: pa.Table  # every burst's copy of every diff: event_ts, burst_id
    snaps: pa.Table  # the snapshots (SNAPSHOT_TIMES columns), the next hour's first minute too
    any_bronze: bool
    bursts: list[str]  # every burst with a file of the hour (l2, diffs, snapshots)


def load_bronze(store: Store, venue: str, symbol: str, hour_start_us: int) -> GapInputs:
    """The inputs from bronze, every file of the hour (and the next hour's snapshots)."""
    # L2: each burst's smallest depth, so a burst that captured other depths still counts.
    by_depth = l2_files_by_depth(store, venue, symbol, hour_start_us)
    min_depth_of: dict[str, int] = {}
    for depth, paths in by_depth.items():
        for p in paths:
            min_depth_of.setdefault(burst_id_of(p), depth)  # depths come ascending
    l2_paths = [p for d, ps in by_depth.items() for p in ps if min_depth_of[burst_id_of(p)] == d]
    raw = read_with_positions(store, l2_paths, L2_CHAIN)
    l2 = deduplicate(raw, LANES["l2"].key, LANES["l2"].preference, LANES["l2"].order)
    diff_paths = bronze_files(store, "diffs", venue, symbol, hour_start_us)
    diffs = read_with_positions(store, diff_paths, DIFF_IDS)
    diff_lane = LANES["diffs"]
    # Snapshots are partitioned by response time, which for a window near the hour's end (plus
    # the reconnect look-ahead) may fall in the next hour.
    snap_paths = bronze_files(store, "snapshots", venue, symbol, hour_start_us)
    next_snap = bronze_files(store, "snapshots", venue, symbol, hour_start_us + HOUR_US)
    snaps = read_with_positions(store, snap_paths + next_snap, SNAPSHOT_TIMES)
    return GapInputs(
        l2=sorted_by_last_id(l2),
        first_of_burst=first_of_burst(raw),
        union=deduplicate(diffs, diff_lane.key, diff_lane.preference, diff_lane.order),
        burst_times=diffs.select(["event_ts", "burst_id"]),
        snaps=snaps,
        any_bronze=bool(by_depth or diff_paths or snap_paths),
        bursts=sorted({burst_id_of(p) for p in [*l2_paths, *diff_paths, *snap_paths]}),
    )


class _Classifier:
    """Answers 'why' for one window from the diff union, per-burst diff spans and snapshots."""

    def __init__(self, venue: str, rule: SyncRule, inputs: GapInputs) -> None:
        self.rule = rule
        venue_def = VENUES.get(venue)
        self.weight_limit = venue_def.weight_limit_1m if venue_def else None
        self.union = u = _Chain.of(sorted_by_last_id(inputs.union))
        # broken_before[k]: links that fail among the first k+1 union events (prefix sums), so
        # "is the union continuous from event lo to hi" is one subtraction.
        self.broken_before = np.concatenate([[0], np.cumsum(~u.links(rule))])
        # Per burst: sorted event times of its diffs (spans and involvement).
        diffs, snaps = inputs.burst_times, inputs.snaps
        ts = _ints(diffs, "event_ts")
        bursts = pc.dictionary_encode(diffs.column("burst_id")).combine_chunks()
        index = bursts.indices.to_numpy(zero_copy_only=False)
        self.burst_ts = {
            str(b): np.sort(ts[index == k])
            for k, b in sorted(enumerate(bursts.dictionary.to_pylist()), key=lambda kb: kb[1])
        }
        self.snaps = [
            {"request": req, "response": resp, "weight": w, "reason": reason, "burst": burst}
            for req, resp, w, reason, burst in zip(
                _ints(snaps, "request_ts").tolist(),
                _ints(snaps, "response_ts").tolist(),
                snaps.column("used_weight_1m").to_pylist(),
                snaps.column("reason").to_pylist(),
                snaps.column("burst_id").to_pylist(),
                strict=True,
            )
        ]

    def union_broken(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
        """Is the diff union broken between L2 records a and b, given as (first, last, prev)?"""
        u = self.union
        # Union events strictly between a and b: [lo, hi).
        lo = int(np.searchsorted(u.last, a[1], side="right"))
        hi = int(np.searchsorted(u.last, b[1], side="left"))
        if lo >= hi:
            return not chains(self.rule, a[1], b[0], b[2])
        first_lo, _, prev_lo = u.ids(lo)
        last_before_b = u.ids(hi - 1)[1]
        return not (
            chains(self.rule, a[1], first_lo, prev_lo)
            and self.broken_before[hi - 1] == self.broken_before[lo]
            and chains(self.rule, last_before_b, b[0], b[2])
        )

    def spanning(self, from_ts: int, to_ts: int) -> list[str]:
        return [b for b, ts in self.burst_ts.items() if ts[0] <= from_ts and ts[-1] >= to_ts]

    def active(self, from_ts: int, to_ts: int) -> set[str]:
        """Bursts with diff events inside [from_ts, to_ts]."""
        return {
            b
            for b, ts in self.burst_ts.items()
            if np.searchsorted(ts, to_ts, side="right") > np.searchsorted(ts, from_ts, side="left")
        }

    def _snaps(self, bursts: Sequence[str], lo: int, hi: int) -> list[dict[str, Any]]:
        return [s for s in self.snaps if s["burst"] in bursts and lo <= s["request"] <= hi]

    def cause(self, a: tuple[int, int, int], b: tuple[int, int, int], t0: int, t1: int) -> str:
        spanning = self.spanning(t0, t1)
        if self.union_broken(a, b):
            if not spanning:
                return "burst_seam"
            if len(spanning) >= 2:
                # The union misses these ids, so every spanning burst missed the same ids.
                return "exchange_restart"
            # The book was rebuilt by the burst's first snapshot requested after the loss began:
            # its reason says why. (A later reconnect inside the look-ahead is another story:
            # a resync for a dropped event followed by a reconnect is still a sequence gap.)
            snaps = self._snaps(spanning, t0, t1 + RECONNECT_LOOKAHEAD_US)
            first = min(snaps, key=lambda s: s["request"], default=None)
            return "reconnect" if first and first["reason"] == "reconnect" else "sequence_gap"
        if not spanning:
            # Continuous only by stitching bursts together: the next burst was still syncing.
            return "burst_seam"
        snaps = self._snaps(spanning, t0, t1)
        for s in snaps:
            slow = s["response"] - s["request"] > SLOW_SNAPSHOT_US
            heavy = (
                s["weight"] is not None
                and self.weight_limit is not None
                and s["weight"] >= WEIGHT_SHARE * self.weight_limit
            )
            if slow or heavy:
                return "rate_limited"
        # A snapshot refused as older than the buffered events is not stored (only the snapshots
        # the book was built from are), so "stale" is inferred from a burst fetching two or more
        # snapshots inside one window: the first one(s) did not bridge.
        for burst in spanning:
            if len(self._snaps([burst], t0, t1)) >= 2:
                return "stale_snapshot"
        return "sequence_gap"


def derive_gap_windows(
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    rule: SyncRule,
    now_us: int | None = None,
    stream_began_this_hour: bool = False,
    inputs: GapInputs | None = None,
) -> pa.Table:
    """Every loss of book continuity in the hour (see the module doc), sorted by from_ts."""
    windows, _chain = derive_gap_windows_and_chain(
        store, venue, symbol, hour_start_us, rule, now_us, stream_began_this_hour, inputs
    )
    return windows


def derive_gap_windows_and_chain(
    store: Store,
    venue: str,
    symbol: str,
    hour_start_us: int,
    rule: SyncRule,
    now_us: int | None = None,
    stream_began_this_hour: bool = False,
    inputs: GapInputs | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(gap windows, the hour's in-sync L2 chain): every loss of book continuity in the hour
    (see the module doc), sorted by from_ts, and the deduplicated L2 records of every burst
    (event_ts, update ids; sorted by last_update_id), which coverage measures. From `inputs`
    if given (silver parts, up to their cut), else from every bronze file of the hour.

    In the stream's first captured hour (stream_began_this_hour), the time before its first
    in-sync record is before capture began, not a loss: no leading hole is reported.

    Reads bronze (all bursts), not silver, so it does not depend on compaction having run; the
    L2 dedup is the same function silver uses. now_us (default: now) decides whether the hour is
    complete, i.e. whether a missing tail is a hole yet.
    """
    now = int(time.time() * 1e6) if now_us is None else now_us
    hour_end = hour_start_us + HOUR_US
    rows: list[dict[str, Any]] = []

    def window(f_id: Any, t_id: Any, t0: int, t1: int, cause: str, bursts: Sequence[str]) -> None:
        rows.append(
            {
                "venue": venue,
                "symbol": symbol,
                "hour_start": hour_start_us,
                "from_update_id": f_id,
                "to_update_id": t_id,
                "from_ts": t0,
                "to_ts": t1,
                "cause": cause,
                "bursts": ",".join(sorted(set(bursts))),
            }
        )

    if now <= hour_start_us:
        return GAP_SCHEMA.empty_table(), L2_CHAIN.empty_table()
    end = min(now, hour_end)
    data = inputs if inputs is not None else load_bronze(store, venue, symbol, hour_start_us)
    chain = _Chain.of(data.l2)
    if not data.any_bronze:
        window(None, None, hour_start_us, end, "no_capture", [])
        return _table(rows), data.l2
    if len(chain) == 0:
        window(None, None, hour_start_us, end, "burst_seam", data.bursts)
        return _table(rows), data.l2

    classifier = _Classifier(venue, rule, data)
    mismatches = Mismatches.load(store, venue, symbol, hour_start_us)
    # Only the breaks are looked at one by one (a handful an hour, among ~36k links).
    for i in np.flatnonzero(~chain.links(rule)).tolist():
        a, b = chain.ids(i), chain.ids(i + 1)
        t0, t1 = int(chain.ts[i]), int(chain.ts[i + 1])
        to_id = b[2] if rule is SyncRule.FUTURES and b[2] >= 0 else b[0] - 1
        spanning = classifier.spanning(t0, t1)
        ends = {chain.burst_at(i), chain.burst_at(i + 1)}
        involved = {*ends, *spanning, *classifier.active(t0, t1)}
        if mismatches.near(involved, t0, t1):
            cause = BOOK_MISMATCH
        else:
            cause = classifier.cause(a, b, t0, t1)
        window(a[1] + 1, to_id, t0, t1, cause, sorted(involved))
    for w in mismatches.windows(hour_start_us, end, data.first_of_burst):
        window(w.from_update_id, w.to_update_id, w.from_ts, w.to_ts, BOOK_MISMATCH, [w.burst])

    first_ts, last_ts = int(chain.ts.min()), int(chain.ts.max())
    if first_ts > hour_start_us + EDGE_TOLERANCE_US and not stream_began_this_hour:
        window(None, None, hour_start_us, first_ts, "burst_seam", [chain.burst_at(0)])
    if now >= hour_end and last_ts < hour_end - EDGE_TOLERANCE_US:
        window(None, None, last_ts, hour_end, "burst_seam", [chain.burst_at(len(chain) - 1)])
    return _table(rows), data.l2


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=GAP_SCHEMA)
    return table.sort_by([("from_ts", "ascending"), ("to_ts", "ascending")])


def write_gap_windows(
    store: Store, table: pa.Table, venue: str, symbol: str, hour_start_us: int
) -> str:
    """Write the partition's windows (even none: "no gaps" is then a recorded fact)."""
    rel = gap_windows_path(venue, symbol, hour_start_us)
    write_parquet(store, rel, table.select(GAP_SCHEMA.names).cast(GAP_SCHEMA), durable=False)
    return rel


def read_gap_windows(store: Store, venue: str, symbol: str, hour_start_us: int) -> pa.Table:
    """The recorded windows; an empty table if none were recorded (see gap_windows_path)."""
    t = read_parquet(store, gap_windows_path(venue, symbol, hour_start_us), GAP_SCHEMA)
    return t if t is not None else GAP_SCHEMA.empty_table()
