"""Silver layer: hourly bronze Avro compacted into deduplicated Parquet, and gap windows.

What each lane's compaction does (key, preference, order, finish) is defined with the lane, in
lanes/."""

from orderbook_pipeline.compaction.gaps import (
    GAP_CAUSES,
    GAP_SCHEMA,
    derive_gap_windows,
    gap_windows_path,
    read_gap_windows,
    write_gap_windows,
)
from orderbook_pipeline.compaction.silver import (
    DIFF_SCHEMA,
    L2_SCHEMA,
    CompactionResult,
    compact_diffs,
    compact_l2,
    compact_lane,
    read_silver_diffs,
    read_silver_l2,
    read_silver_lane,
)

__all__ = [
    "DIFF_SCHEMA",
    "GAP_CAUSES",
    "GAP_SCHEMA",
    "L2_SCHEMA",
    "CompactionResult",
    "compact_diffs",
    "compact_l2",
    "compact_lane",
    "derive_gap_windows",
    "gap_windows_path",
    "read_gap_windows",
    "read_silver_diffs",
    "read_silver_l2",
    "read_silver_lane",
    "write_gap_windows",
]
