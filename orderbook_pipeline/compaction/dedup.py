"""Deduplication of overlapping bursts' copies: one row per key, the preferred copy, in order.

Columnar: only the key, preference and order columns are sorted (Arrow sort + a "first of
group" mask, O(n log n)); the caller takes the wide columns once, in the final order.
Every tie is broken: after the preference come the input positions (path order of the bronze
files, then record order), so the result depends only on the set of files read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# EVENT_ORDER, the exchange order of the book lanes, is the default order of deduplicate().
from orderbook_pipeline.lanes.spec import EVENT_ORDER, SortKey

SRC = "__src"  # input position (path order, then record order): the last tie-break


def positions(n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=np.int64))


def first_of_groups(sorted_table: pa.Table, key: Sequence[str]) -> pa.Array:
    """Boolean mask of the rows that start a new `key` group in a table sorted by `key`."""
    n = sorted_table.num_rows
    if n <= 1:
        return pa.array([True] * n, pa.bool_())
    differs = None
    for k in key:
        col = sorted_table.column(k).combine_chunks()
        step = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        differs = step if differs is None else pc.or_(differs, step)
    return pa.concat_arrays([pa.array([True]), differs])


def narrow_columns(
    key: Sequence[str], preference: Sequence[SortKey], order: Sequence[SortKey] = EVENT_ORDER
) -> list[str]:
    """The columns dedup and ordering look at."""
    return list(dict.fromkeys([*key, *(c for c, _ in preference), *(c for c, _ in order)]))


def dedup_rows(
    narrow: pa.Table,
    key: Sequence[str],
    preference: Sequence[SortKey],
    order: Sequence[SortKey] = EVENT_ORDER,
) -> np.ndarray | None:
    """Indices of the rows deduplicate() keeps, in its order; None when that is every row as
    it stands (one per key and in order already: nothing to reorder). The input order (or an
    SRC column, if given) is the last tie-break."""
    n = narrow.num_rows
    if SRC not in narrow.column_names:
        narrow = narrow.append_column(SRC, positions(n))
    by = [*((k, "ascending") for k in key), *preference, (SRC, "ascending")]
    ranked = pc.sort_indices(narrow, sort_keys=by)
    kept = ranked.filter(first_of_groups(narrow.take(ranked), key))
    # Arrow's sort is stable: rows equal in `order` stay in key order, so the order is total.
    final = kept.take(pc.sort_indices(narrow.take(kept), sort_keys=list(order))).to_numpy()
    return None if len(final) == n and np.array_equal(final, np.arange(n)) else final


def deduplicate(
    table: pa.Table,
    key: Sequence[str],
    preference: Sequence[SortKey],
    order: Sequence[SortKey] = EVENT_ORDER,
) -> pa.Table:
    """One row per `key` (the first by `preference`, then input order), sorted by `order`.

    Only the key, preference and order columns are sorted; the full table is taken once at the
    end, and returned as is when it already was deduplicated and in order.
    """
    has_src = SRC in table.column_names
    narrow_names = narrow_columns(key, preference, order) + ([SRC] if has_src else [])
    rows = dedup_rows(table.select(narrow_names), key, preference, order)
    if has_src:
        table = table.drop_columns([SRC])
    return table if rows is None else table.take(pa.array(rows))
