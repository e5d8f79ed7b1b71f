"""Columnar compaction specifics: dedup decided on narrow columns, wide ones built in final
order, partitions mixing writer schemas, and silver read back column by column."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa

from orderbook_pipeline.compaction import silver
from orderbook_pipeline.compaction.avro_arrow import decode_files
from orderbook_pipeline.compaction.silver import (
    L2_SCHEMA,
    compact_l2,
    dedup_rows,
    read_silver_l2,
)
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import LocalStore, Store
from orderbook_pipeline_tests.bronze_factory import SYMBOL, T0, VENUE, BurstBuilder, l2_record, tape


def _put_avro(store: Store, rel: str, schema: dict[str, Any], records: list[dict]) -> None:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec="snappy")
    store.write_bytes(rel, out.getvalue())


def test_dedup_rows_is_none_for_rows_already_unique_and_in_order() -> None:
    ev = tape(5)
    rows = [l2_record(e, 10, "a") for e in ev]
    narrow = pa.Table.from_pylist(rows, schema=L2_SCHEMA).select(
        ["last_update_id", "recovered", "gap_detected", "ingest_ts", "burst_id", "event_ts"]
    )
    keep = silver.L2_KEY, silver.L2_PREFERENCE
    assert dedup_rows(narrow, *keep) is None
    # Reversed input: every row kept, in event order, i.e. read backwards.
    reversed_rows = dedup_rows(narrow.take(pa.array(np.arange(5)[::-1])), *keep)
    assert reversed_rows is not None and reversed_rows.tolist() == [4, 3, 2, 1, 0]
    # A duplicate of row 2 from a later burst at the end: dropped.
    dup = pa.Table.from_pylist([*rows, l2_record(ev[2], 10, "b")], schema=L2_SCHEMA)
    kept = dedup_rows(dup.select(narrow.column_names), *keep)
    assert kept is not None and kept.tolist() == [0, 1, 2, 3, 4]


def test_a_partition_mixing_writer_schemas_compacts_like_a_uniform_one(tmp_path: Path) -> None:
    """A file written by another version of the schema (one more field, with a default) is
    decoded on its own and deduplicated with the rest."""
    ev = tape(40)
    uniform, mixed = LocalStore(str(tmp_path / "u")), LocalStore(str(tmp_path / "m"))
    for store in (uniform, mixed):
        BurstBuilder("a", depths=(10,)).received(ev[:30]).write(store)
    newer = copy.deepcopy(LANES["l2"].avro)
    newer["fields"].append({"name": "note", "type": "string", "default": ""})
    part = Partition("l2", VENUE, SYMBOL, T0, 10)
    late = [l2_record(e, 10, "b", ingest_lag_us=500) for e in ev[20:]]
    _put_avro(uniform, part.bronze_file("b", 0), LANES["l2"].avro, late)
    _put_avro(mixed, part.bronze_file("b", 0), newer, [{**r, "note": "v2"} for r in late])
    paths = silver.l2_files_by_depth(mixed, VENUE, SYMBOL, T0)[10]
    assert len(decode_files(mixed.read_bytes(p) for p in paths)) == 2  # two writer schemas
    results = [compact_l2(store, VENUE, SYMBOL, T0)[10] for store in (uniform, mixed)]
    assert [(r.rows_in, r.rows_out) for r in results] == [(50, 40), (50, 40)]
    tables = [read_silver_l2(store, VENUE, SYMBOL, T0, 10) for store in (uniform, mixed)]
    assert tables[0].equals(tables[1])
    assert tables[1].column("last_update_id").to_pylist() == [e.u for e in ev]


def test_silver_l2_reads_only_the_columns_asked(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    BurstBuilder("a").received(tape(10)).write(store)
    compact_l2(store, VENUE, SYMBOL, T0)
    mids = read_silver_l2(store, VENUE, SYMBOL, T0, columns=["depth", "mid"])
    assert mids.column_names == ["depth", "mid"]
    assert mids.schema == pa.schema([L2_SCHEMA.field("depth"), L2_SCHEMA.field("mid")])
    full = read_silver_l2(store, VENUE, SYMBOL, T0)
    assert mids.equals(full.select(["depth", "mid"]))
    empty = read_silver_l2(store, VENUE, SYMBOL, T0 + 3_600_000_000, columns=["mid"])
    assert empty.num_rows == 0 and empty.column_names == ["mid"]
