"""The lane registry: what silver does with each bronze lane, in one table.

Every lane is compacted by the same code (silver.py): decode the hour's bronze files, keep one
row per `key` (the first copy by `preference`, then by input position), sort by `order`, apply
`finish` (if any), write Parquet. The silver schema is derived from the lane's Avro schema.
The hour is compacted in settled parts (parts.py): `finish` gets the previous part's last
value of `carry`, and a lane whose copies of one key carry different partition times (receive
times) leaves out the keys an earlier part already holds.

`partition_ts` names the field whose UTC hour is the lane's partition (the capture writes each
record under that hour): readers and test fixtures take it from here.

Why the preferences:
- l2, depth_bands: a copy from a burst whose book was never rebuilt (recovered, then
  gap_detected, false first) is the one least likely to be wrong; then the earliest received.
- klines: a candle fetched again later (it may have been open when first fetched) supersedes.
- the rest: the earliest received copy, then the smallest burst id.
- snapshots, deep_snapshots, book_mismatches carry no receive time, and their key includes the
  burst: copies of one key are the same record written twice (a salvaged file), identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction.arrow_schemas import arrow_schema
from orderbook_pipeline.compaction.dedup import EVENT_ORDER, SortKey
from orderbook_pipeline.storage.schemas import LANE_SCHEMAS

# (the part's deduplicated, ordered table, the previous part's last value of `carry` or None)
Finish = Callable[[pa.Table, int | None], pa.Table]


@dataclass(frozen=True)
class Lane:
    name: str
    partition_ts: str
    key: tuple[str, ...]
    preference: tuple[SortKey, ...]
    order: tuple[SortKey, ...]
    description: str  # what one record is
    per_depth: bool = False  # one silver directory per depth (l2)
    finish: Finish | None = None  # applied to each part's deduplicated, ordered table
    carry: str | None = None  # the column whose last value the next part's finish needs
    # False where copies of one key have different partition times (each burst's receive
    # time): a later part must leave out keys an earlier part holds.
    copies_share_ts: bool = True
    # False: the bronze is rewritten in place (klines), so every refresh compacts it all.
    incremental: bool = True

    @property
    def avro(self) -> dict[str, Any]:
        return LANE_SCHEMAS[self.name]

    @cached_property
    def schema(self) -> pa.Schema:
        return arrow_schema(self.avro)


def recount_missing(id_column: str) -> Finish:
    """`missing_before` recomputed over the deduplicated union of bursts (ids skipped since the
    previous row of the hour; 0 for the hour's first row): one burst's loss may have been
    received by another, so the bronze per-burst counts would overstate it. Needs the table
    sorted by `id_column`; `previous` is the last id of the hour's earlier parts."""

    def finish(table: pa.Table, previous: int | None) -> pa.Table:
        ids = np.asarray(table.column(id_column).to_numpy(), np.int64)
        missing = np.zeros(len(ids), np.int64)
        missing[1:] = np.diff(ids) - 1
        if len(ids) and previous is not None:
            missing[0] = max(0, int(ids[0]) - previous - 1)
        at = table.schema.get_field_index("missing_before")
        return table.set_column(at, table.schema.field(at), pa.array(missing, pa.int64()))

    return finish


def _asc(*columns: str) -> tuple[SortKey, ...]:
    return tuple((c, "ascending") for c in columns)


_FIRST_RECEIVED = _asc("ingest_ts", "burst_id")
_UNBROKEN_FIRST = _asc("recovered", "gap_detected", "ingest_ts", "burst_id")

LANES: dict[str, Lane] = {
    lane.name: lane
    for lane in (
        Lane(
            "l2",
            "event_ts",
            ("last_update_id",),
            _UNBROKEN_FIRST,
            EVENT_ORDER,
            "Fixed-depth L2 records, one per applied diff event per depth, while in sync.",
            per_depth=True,
        ),
        Lane(
            "diffs",
            "event_ts",
            ("first_update_id", "last_update_id"),
            _FIRST_RECEIVED,
            EVENT_ORDER,
            "Every distinct depth event received, exact strings as sent.",
        ),
        Lane(
            "snapshots",
            "response_ts",
            ("burst_id", "last_update_id", "request_ts"),
            _asc("response_ts"),
            _asc("response_ts", "last_update_id"),
            "The REST snapshots books were built from, with reason and request weight.",
        ),
        Lane(
            "trades",
            "event_ts",
            ("trade_id",),
            _FIRST_RECEIVED,
            _asc("trade_id"),
            "Every trade (<sym>@trade), exact strings; missing_before: trade ids skipped.",
            finish=recount_missing("trade_id"),
            carry="trade_id",
        ),
        Lane(
            "agg_trades",
            "event_ts",
            ("agg_id",),
            _FIRST_RECEIVED,
            _asc("agg_id"),
            "Aggregate trades (<sym>@aggTrade), exact strings; missing_before: agg ids skipped.",
            finish=recount_missing("agg_id"),
            carry="agg_id",
        ),
        Lane(
            "book_ticker",
            "ts",
            ("update_id",),
            _FIRST_RECEIVED,
            # Not by ts: on spot it is each burst's own receive time, so copies chosen from
            # different bursts could sort out of exchange order.
            _asc("update_id"),
            "Best bid/ask updates (<sym>@bookTicker), each compared with the local book.",
            copies_share_ts=False,
        ),
        Lane(
            "partial_depth",
            "ts",
            ("levels", "last_update_id"),
            _FIRST_RECEIVED,
            _asc("last_update_id", "levels"),
            "Top-N partial depth (<sym>@depth<N>@100ms), each compared with the local book.",
            copies_share_ts=False,
        ),
        Lane(
            "depth_bands",
            "event_ts",
            ("last_update_id",),
            _UNBROKEN_FIRST,
            EVENT_ORDER,
            "Bid/ask quantity and notional within percent bands of mid, from the local book.",
        ),
        Lane(
            "deep_snapshots",
            "response_ts",
            ("burst_id", "last_update_id", "request_ts"),
            _asc("response_ts"),
            _asc("response_ts", "last_update_id"),
            "Periodic deep REST snapshots, each compared with the local book (verify_result).",
        ),
        Lane(
            "book_mismatches",
            "detected_ts",
            ("burst_id", "source", "update_id"),
            _asc("detected_ts"),
            _asc("detected_ts", "update_id"),
            "Every difference found between the local book and an exchange view of it.",
        ),
        Lane(
            "klines",
            "open_ts",
            ("interval", "open_ts"),
            (("fetched_ts", "descending"), ("burst_id", "ascending")),
            _asc("interval", "open_ts"),
            "Klines (OHLCV candles) fetched over REST; a later fetch of a candle supersedes.",
            incremental=False,
        ),
    )
}


def lane(name: str) -> Lane:
    try:
        return LANES[name]
    except KeyError:
        raise ValueError(f"unknown lane {name!r}; known: {', '.join(LANES)}") from None
