"""What a lane is: one definition from which everything else about it is derived.

A lane module (l2.py, trades.py, ...) holds one `Lane`: its Avro fields beyond the shared ones,
its compaction rule, how a burst feeds it, its stream, its checks, and the functions that parse
its input and encode its records. From it come the bronze Avro schema (`avro`, `parsed`), the
silver Arrow schema (`schema`), the bronze asset and its checks (assets/bronze.py,
checks/specs.py).

Compaction (compaction/silver.py, increments.py) is the same for every lane: decode the hour's
bronze files, keep one row per `key` (the first copy by `preference`, then by input position),
sort by `order`, apply `finish` (if any), write Parquet. The hour is compacted in settled parts:
`finish` gets the previous part's last value of `carry`, and a lane whose copies of one key
carry different partition times (receive times) leaves out the keys an earlier part holds.

`partition_ts` names the field whose UTC hour is the lane's partition (the capture writes each
record under that hour): readers and test fixtures take it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import fastavro

if TYPE_CHECKING:  # pyarrow is imported by what compacts, never by the capture (~35 MB RSS)
    import pyarrow as pa

Direction = Literal["ascending", "descending"]
SortKey = tuple[str, Direction]
# (the part's deduplicated, ordered table, the previous part's last value of `carry` or None)
Finish = Callable[["pa.Table", int | None], "pa.Table"]
# How a burst asked for the lane fills it: from the depth stream and the local book, from a
# stream of the lane's own, or from periodic REST calls.
Feed = Literal["book", "stream", "rest"]

NAMESPACE = "orderbook_pipeline"
# Every record starts with the stream it belongs to and ends with the burst (or backfill run)
# that wrote it: the capture encodes these once per stream, as the encoders' prefix and suffix.
HEAD_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "venue", "type": "string"},
    {"name": "symbol", "type": "string"},
)
TAIL_FIELDS: tuple[dict[str, Any], ...] = ({"name": "burst_id", "type": "string"},)

# Exchange order of the book lanes.
EVENT_ORDER: tuple[SortKey, ...] = (("event_ts", "ascending"), ("last_update_id", "ascending"))


def asc(*columns: str) -> tuple[SortKey, ...]:
    return tuple((c, "ascending") for c in columns)


# The usual preferences among copies of one key: the earliest received, then the smallest burst
# id; for lanes built from the local book, first a copy from a burst whose book was never rebuilt
# (recovered, then gap_detected, false first), the one least likely to be wrong.
FIRST_RECEIVED = asc("ingest_ts", "burst_id")
UNBROKEN_FIRST = asc("recovered", "gap_detected", "ingest_ts", "burst_id")


@dataclass(frozen=True)
class LaneCheck:
    """An hourly check judged on the lane's silver (checks/specs.py makes a CheckSpec of it)."""

    name: str
    description: str
    reseeds: bool = False  # a failure starts fresh snapshots of the failed streams


# eq=False: a lane is one object (its fields hold dicts, which would make it unhashable).
@dataclass(frozen=True, eq=False)
class Lane:
    name: str
    record: str  # the Avro record's name
    fields: tuple[dict[str, Any], ...]  # Avro fields between HEAD_FIELDS and TAIL_FIELDS
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
    feed: Feed | None = None  # None: never asked for (written beside other lanes, or by an asset)
    # The stream's name after the lower-case symbol ("{levels}": the partial depth levels).
    stream: str | None = None
    # True: its bronze is written by a Dagster asset of its own (klines), not by capture bursts.
    own_asset: bool = False
    checks: tuple[LaneCheck, ...] = ()
    # True: its records are compared with the local book (a difference is a book_mismatches
    # record, and book_verified reads the lane).
    checks_book: bool = False
    # True: the gap windows are derived from it (its bronze is an input of the refresh).
    gap_input: bool = False
    # What turns the exchange's input into the lane's record (or its parts), and what encodes
    # it to Avro binary when not written as a dict by the bronze writer's fastavro path.
    parse: Callable[..., Any] | None = None
    encode: Callable[..., Any] | None = None

    @cached_property
    def avro(self) -> dict[str, Any]:
        """The bronze Avro record schema."""
        return {
            "type": "record",
            "name": self.record,
            "namespace": NAMESPACE,
            "fields": [*HEAD_FIELDS, *self.fields, *TAIL_FIELDS],
        }

    @cached_property
    def parsed(self) -> Any:
        """The Avro schema parsed by fastavro, as its writers and readers take it."""
        return fastavro.parse_schema(self.avro)

    @cached_property
    def schema(self) -> pa.Schema:
        """The silver Arrow schema."""
        from orderbook_pipeline.lanes.arrow import arrow_schema

        return arrow_schema(self.avro)
