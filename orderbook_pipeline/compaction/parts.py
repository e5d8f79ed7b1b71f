"""Silver hours are written in settled parts: the bookkeeping of one silver partition directory.

The hour in progress is refreshed every few minutes, and recompacting everything it holds so far
each time would make the cost grow with the square of the hour. Instead each refresh compacts
only the rows that have *settled* (see `settled_cut`) and were not compacted before, into one
more part file; the hour's silver is the union of its parts (`part-NNNNN.parquet`): disjoint in
the lane's partition time, each deduplicated and sorted, no key in two parts.

Settled means every copy of the row has landed: overlapping bursts each write their copy into a
file that is published at most `file_seconds` after its first record (bronze_writer.py), so once
a row's time is more than that (plus a margin for receive lag and clocks) in the past, no copy
of it can still be on its way. A part therefore holds exactly the rows a compaction of the whole
hour would keep for its time range, the same preferred copies included. A file that lands later
anyway (a killed burst's temporaries salvaged by the next burst) is noticed by its rows falling
below the cut, and the directory is then compacted again from all of its bronze.

The state of a directory, `_parts.json` (not a data file: readers of `*.parquet` never see it),
says how far it is compacted and from which bronze files, so the next refresh reads only what is
new. It is written after the part it describes: a part not named by the state (a refresh that
died in between) is removed and redone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import Store

STATE_FILE = "_parts.json"
PART_PREFIX = "part-"
LEGACY_FILE = "data.parquet"  # silver written whole, before parts (still read, then replaced)
# Beyond file_seconds, how long a row may take from its exchange time to a published file:
# receive lag (seconds when a host is loaded), clock offsets, the writer's flush tick.
SETTLE_MARGIN_S = 30.0
CUT_STEP_US = 5_000_000  # cuts fall on 5 s boundaries: no mart bucket straddles two parts
STATE_VERSION = 1


def settled_cut(now_us: int, hour_start_us: int, hour_end_us: int, file_seconds: float) -> int:
    """The time before which every row of the hour has settled at `now_us` (a 5 s boundary, at
    most the hour's end, at least its start)."""
    cut = now_us - int((file_seconds + SETTLE_MARGIN_S) * 1e6)
    cut -= cut % CUT_STEP_US
    return max(hour_start_us, min(hour_end_us, cut))


def part_name(seq: int) -> str:
    return f"{PART_PREFIX}{seq:05d}.parquet"


def part_seq(name: str) -> int | None:
    """Sequence number of a part file name, or None if it is not one."""
    base = name.rsplit("/", 1)[-1]
    if not (base.startswith(PART_PREFIX) and base.endswith(".parquet")):
        return None
    digits = base[len(PART_PREFIX) : -len(".parquet")]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class PartsState:
    """How far one silver partition directory is compacted."""

    cut_us: int  # every settled row with partition time < cut_us is in `parts`
    parts: tuple[str, ...] = ()  # live part file names, oldest first
    # Every bronze file read so far -> the largest partition time among its rows (µs): a file
    # whose largest time is below the cut has nothing left to give.
    files: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # rows in the live parts
    bronze_rows: int = 0  # bronze records (every copy) with partition time < cut_us
    bronze_keys: int = 0  # distinct keys among them, counted apart from the dedup (reconcile)
    carry: int | None = None  # the last part's last value of the lane's carry column
    # What the caller's inspection of each part counted (compact_partition's `inspect`):
    # summed over the parts, except "first_*" values, which keep the earliest part's.
    counters: dict[str, int] = field(default_factory=dict)
    # Lanes whose bronze is rewritten in place (klines): a digest of the bytes compacted, so an
    # unchanged hour is not compacted again.
    digest: str = ""

    def pending_files(self) -> list[str]:
        """Files read before that still hold rows at or after the cut."""
        return sorted(f for f, last in self.files.items() if last >= self.cut_us)

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"version": STATE_VERSION, **asdict(self)}
        body["parts"] = list(self.parts)
        return json.dumps(body, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PartsState:
        body = json.loads(data)
        if body.pop("version", None) != STATE_VERSION:
            raise ValueError("unknown silver parts state version")
        body["parts"] = tuple(body["parts"])
        body["files"] = {str(k): int(v) for k, v in body["files"].items()}
        body["counters"] = {str(k): int(v) for k, v in body.get("counters", {}).items()}
        return cls(**body)

    def advanced(self, **changes: Any) -> PartsState:
        return replace(self, **changes)


def add_counters(before: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    """`before` with one more part's counters added (see PartsState.counters)."""
    out = dict(before)
    for name, value in part.items():
        if name.startswith("first_"):
            out.setdefault(name, value)
        else:
            out[name] = out.get(name, 0) + value
    return out


def state_path(partition: Partition) -> str:
    return f"{partition.directory('silver')}/{STATE_FILE}"


def part_path(partition: Partition, name: str) -> str:
    return f"{partition.directory('silver')}/{name}"


def read_state(store: Store, partition: Partition) -> PartsState | None:
    """The directory's state, or None if it has none (never compacted, or written whole by an
    earlier version) or it cannot be read (it is then compacted again from scratch)."""
    try:
        return PartsState.from_json(store.read_bytes(state_path(partition)))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def write_state(store: Store, partition: Partition, state: PartsState) -> None:
    store.write_bytes(state_path(partition), state.to_json(), durable=False)


def data_files(store: Store, partition: Partition) -> list[str]:
    """Every Parquet file in the directory (live parts, leftovers, a legacy data.parquet),
    relative paths; depth subdirectories of l2 are not included."""
    directory = partition.directory("silver")
    return [
        rel
        for rel in store.list_files(directory + "/", suffix=".parquet")
        if rel.rsplit("/", 1)[0] == directory
    ]


def live_files(store: Store, partition: Partition) -> list[str]:
    """The Parquet files that make up the partition's silver, in time order: the live parts the
    state names, or (no state: silver written whole) every Parquet file there."""
    state = read_state(store, partition)
    if state is not None:
        return [part_path(partition, name) for name in state.parts]
    return data_files(store, partition)


def next_seq(existing: list[str]) -> int:
    """A part number after every existing one (a recompute never overwrites a live part)."""
    seqs = [s for s in (part_seq(p) for p in existing) if s is not None]
    return max(seqs) + 1 if seqs else 0
