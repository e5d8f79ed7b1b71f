"""Silver content against an independent recomputation from bronze (fastavro records, a dict
per key, Python sorting), on an hour of overlapping bursts with gaps, depths 10/20/50 and the
diff lane: whatever the columnar path does to go fast, the rows and values stay these."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from orderbook_pipeline.compaction.increments import Request, compact_batch
from orderbook_pipeline.compaction.parquet_io import leaf_paths, plain_leaves
from orderbook_pipeline.compaction.silver import (
    bronze_files,
    compact_diffs,
    compact_l2,
    read_silver_diffs,
    read_silver_l2,
)
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import Partition, partition_of
from orderbook_pipeline.storage.store import LocalStore, Store
from orderbook_pipeline_tests.bronze_factory import SYMBOL, T0, VENUE, BurstBuilder, tape

DEPTHS = (10, 20, 50)


def _hour(store: Store) -> None:
    """Burst a: events 0..399 with a book rebuild at 150 (flagged from there). Burst b:
    250..879 (ingested earlier) but for 500..539, which no burst received. Burst c:
    850..999, late. Events 600..619 were never sent at all (a hole in the ids)."""
    ev = tape(1000)
    ev = ev[:600] + ev[620:]
    a = BurstBuilder("a", depths=DEPTHS)
    a.received(ev[:150]).received(ev[150:400], gap_detected_first=True, recovered=True)
    a.write(store)
    b = BurstBuilder("b", depths=DEPTHS, ingest_lag_us=400)
    b.received(ev[250:500]).received(ev[540:880], gap_detected_first=True)
    b.write(store)
    BurstBuilder("c", depths=DEPTHS, ingest_lag_us=2500).received(ev[830:]).write(store)


def _expected(store: Store, lane: str, depth: int | None) -> list[dict[str, Any]]:
    """One record per key, the first by the lane's preference then path and record order,
    sorted by (event_ts, last_update_id): computed record by record."""
    spec = LANES[lane]
    best: dict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
    paths = [
        p
        for p in bronze_files(store, lane, VENUE, SYMBOL, T0)
        if (q := partition_of(p)) is not None and q.depth == depth
    ]
    for n, rel in enumerate(paths):
        records = fastavro.reader(io.BytesIO(store.read_bytes(rel)))
        for i, rec in enumerate(cast(Iterator[dict[str, Any]], records)):
            key = tuple(rec[k] for k in spec.key)
            rank = (*(rec[c] for c, _ in spec.preference), n, i)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, rec)
    rows = [rec for _, rec in best.values()]
    rows.sort(key=lambda r: (r["event_ts"], r["last_update_id"]))
    out: list[dict[str, Any]] = pa.Table.from_pylist(rows, schema=spec.schema).to_pylist()
    return out


def test_silver_equals_a_record_by_record_recomputation(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    _hour(store)
    results = compact_l2(store, VENUE, SYMBOL, T0)
    assert sorted(results) == list(DEPTHS)
    diffs = compact_diffs(store, VENUE, SYMBOL, T0)
    assert diffs is not None and diffs.rows_in > diffs.rows_out == 940
    for depth in DEPTHS:
        expected = _expected(store, "l2", depth)
        assert len(expected) == 940 and results[depth].rows_in > 980
        assert read_silver_l2(store, VENUE, SYMBOL, T0, depth).to_pylist() == expected
    assert read_silver_diffs(store, VENUE, SYMBOL, T0).to_pylist() == _expected(
        store, "diffs", None
    )


def test_depths_in_one_batch_equal_depths_one_by_one(tmp_path: Path) -> None:
    """The refresh decodes every depth of an hour together and builds each directory's rows
    from the shared decode: the same tables as compact_l2's depth-at-a-time."""
    one, batch = LocalStore(str(tmp_path / "one")), LocalStore(str(tmp_path / "batch"))
    for store in (one, batch):
        _hour(store)
    compact_l2(one, VENUE, SYMBOL, T0)
    requests = [Request(LANES["l2"], Partition("l2", VENUE, SYMBOL, T0, d)) for d in DEPTHS]
    done = compact_batch(batch, requests)
    assert [r.rows_out for r in done if r is not None] == [940] * 3
    for depth in DEPTHS:
        assert read_silver_l2(batch, VENUE, SYMBOL, T0, depth).equals(
            read_silver_l2(one, VENUE, SYMBOL, T0, depth)
        )


def test_parquet_leaf_paths_and_the_plain_side_column(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    _hour(store)
    rel = compact_l2(store, VENUE, SYMBOL, T0)[20].path
    meta = pq.ParquetFile(io.BytesIO(store.read_bytes(rel))).metadata
    paths = [meta.schema.column(i).path for i in range(meta.num_columns)]
    assert paths == leaf_paths(LANES["l2"].schema)
    assert plain_leaves(LANES["l2"].avro["fields"]) == ("levels.list.element.side",)
    encodings = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
        for i in range(meta.num_columns)
    }
    assert "RLE_DICTIONARY" not in encodings["levels.list.element.side"]
    assert "RLE_DICTIONARY" in encodings["levels.list.element.px"]
