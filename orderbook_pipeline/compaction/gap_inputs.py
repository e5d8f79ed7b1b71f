"""The gap windows' inputs from silver instead of bronze: what a refresh has just compacted.

Deriving an hour's windows from its bronze decodes every file of the hour again, every refresh.
Silver already holds the deduplicated L2 chain (the smallest depth), the deduplicated diffs and
the snapshots, read in a few narrow Parquet columns; what silver's dedup drops, every burst's
own copy, is kept beside each part (`_copies-*.arrow`, increments.py): each burst's diff times
(which bursts spanned a window) and its first L2 record (where a mismatch span begins). The
result equals the windows derived from bronze up to the parts' cut (tested).
"""

from __future__ import annotations

import pyarrow as pa

from orderbook_pipeline.compaction.gaps import (
    DIFF_IDS,
    L2_CHAIN,
    SNAPSHOT_TIMES,
    GapInputs,
    first_of_burst,
    sorted_by_last_id,
)
from orderbook_pipeline.compaction.increments import read_copies
from orderbook_pipeline.compaction.parts import read_state
from orderbook_pipeline.compaction.silver import (
    bronze_files,
    read_lane_files,
    read_silver_l2,
    read_silver_lane,
)
from orderbook_pipeline.storage.layout import HOUR_US, Partition, burst_id_of
from orderbook_pipeline.storage.store import Store

L2_COPIES = ("event_ts", "first_update_id", "burst_id")  # kept of every L2 copy (min depth)
DIFF_COPIES = ("event_ts", "burst_id")  # kept of every diff copy


def inputs_from_parts(
    store: Store, venue: str, symbol: str, hour_start_us: int, depth: int, cut_us: int
) -> GapInputs | None:
    """The inputs up to `cut_us` from the hour's silver (l2 at `depth`, the venue's smallest,
    diffs and snapshots, all compacted up to exactly that cut) and their copies; None when
    silver is not that far or has no copies (then read bronze)."""
    l2_dir = Partition("l2", venue, symbol, hour_start_us, depth)
    diff_dir = Partition("diffs", venue, symbol, hour_start_us)
    snap_dir = Partition("snapshots", venue, symbol, hour_start_us)
    for directory in (l2_dir, diff_dir):
        state = read_state(store, directory)
        if state is None or state.cut_us != cut_us:
            return None
    snap_state = read_state(store, snap_dir)
    if snap_state is not None and snap_state.cut_us != cut_us:
        return None
    l2_copies = read_copies(store, l2_dir, L2_COPIES)
    diff_copies = read_copies(store, diff_dir, DIFF_COPIES)
    if l2_copies is None or diff_copies is None:
        return None
    l2 = read_silver_l2(store, venue, symbol, hour_start_us, depth, L2_CHAIN.names)
    names = SNAPSHOT_TIMES.names
    snaps = read_silver_lane(store, "snapshots", venue, symbol, hour_start_us, names)
    snaps = snaps.cast(SNAPSHOT_TIMES)
    if cut_us >= hour_start_us + HOUR_US:
        # The next hour's first snapshots (a reconnect's rebuild may come just after the hour):
        # a few records, read from bronze once the hour is closed.
        following = bronze_files(store, "snapshots", venue, symbol, hour_start_us + HOUR_US)
        snaps = pa.concat_tables([snaps, read_lane_files(store, following, SNAPSHOT_TIMES)])
    state_files = [
        f for d in (l2_dir, diff_dir, snap_dir) if (s := read_state(store, d)) for f in s.files
    ]
    return GapInputs(
        l2=sorted_by_last_id(l2),
        first_of_burst=first_of_burst(l2_copies),
        union=read_silver_lane(store, "diffs", venue, symbol, hour_start_us, DIFF_IDS.names),
        burst_times=diff_copies,
        snaps=snaps,
        any_bronze=bool(state_files),
        bursts=sorted({burst_id_of(f) for f in state_files}),
    )
