"""Steps a lane's compaction applies to each part after deduplication (Lane.finish)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook_pipeline.lanes.spec import Finish

if TYPE_CHECKING:  # imported when compaction runs: the capture never loads pyarrow
    import pyarrow as pa


def recount_missing(id_column: str) -> Finish:
    """`missing_before` recomputed over the deduplicated union of bursts (ids skipped since the
    previous row of the hour; 0 for the hour's first row): one burst's loss may have been
    received by another, so the bronze per-burst counts would overstate it. Needs the table
    sorted by `id_column`; `previous` is the last id of the hour's earlier parts."""

    def finish(table: pa.Table, previous: int | None) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        ids = np.asarray(table.column(id_column).to_numpy(), np.int64)
        missing = np.zeros(len(ids), np.int64)
        missing[1:] = np.diff(ids) - 1
        if len(ids) and previous is not None:
            missing[0] = max(0, int(ids[0]) - previous - 1)
        at = table.schema.get_field_index("missing_before")
        return table.set_column(at, table.schema.field(at), pa.array(missing, pa.int64()))

    return finish
