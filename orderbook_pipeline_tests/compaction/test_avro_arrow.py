"""The columnar Avro decoder gives exactly what fastavro gives, on every file bronze can hold."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa
import pytest

from orderbook_pipeline.compaction.avro_arrow import (
    Decoded,
    decode_files,
    read_avro_table,
    read_avro_tables,
)
from orderbook_pipeline.compaction.avro_container import MAGIC, open_container
from orderbook_pipeline.compaction.silver import DIFF_SCHEMA, L2_SCHEMA
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.bronze_writer import BronzeWriter, BurstLock
from orderbook_pipeline.storage.layout import partition_for
from orderbook_pipeline.storage.salvage import recover_temporaries
from orderbook_pipeline.storage.store import LocalStore, Store
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM, Venue
from orderbook_pipeline_tests.bronze_factory import (
    SECOND,
    T0,
    BurstBuilder,
    diff_record,
    l2_record,
    tape,
)
from orderbook_pipeline_tests.capture.conftest import SIM_DEFAULTS, capture


def fastavro_records(data: bytes) -> list[dict[str, Any]]:
    return list(fastavro.reader(io.BytesIO(data)))  # type: ignore[arg-type]


def assert_same_as_fastavro(data: bytes) -> pa.Table:
    """Decode `data` both ways; the values (and so the table fastavro's dicts would make)
    must be identical."""
    table = read_avro_table(data)
    assert table.to_pylist() == fastavro_records(data)
    return table


def avro_file(lane: str, records: list[dict[str, Any]], codec: str = "snappy", **kw: Any) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, LANES[lane].parsed, records, codec=codec, **kw)
    return out.getvalue()


def bronze_bytes(store: Store) -> dict[str, bytes]:
    return {rel: store.read_bytes(rel) for rel in store.list_files("bronze/", suffix=".avro")}


def test_every_lane_of_factory_bronze_decodes_as_fastavro_does(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    spot = tape(60)
    a = BurstBuilder("a", depths=(10, 20)).snapshot(999, T0, used_weight=None)
    a.received(spot[:30]).received(spot[30:], gap_detected_first=True, recovered=True)
    a.snapshot(2000, T0 + 5 * SECOND, reason="reconnect", used_weight=420)
    a.write(store)
    futures = BurstBuilder("f", venue="binance-usdm", depths=(5,))
    futures.received(tape(40, futures=True)).snapshot(1, T0, reason="gap").write(store)
    files = bronze_bytes(store)
    assert {rel.split("/")[1] for rel in files} == {"l2", "diffs", "snapshots"}
    for rel, data in files.items():
        table = assert_same_as_fastavro(data)
        assert table.num_rows > 0, rel
        # The types silver declares, exactly (cast would fail on a mismatch of kind).
        if rel.startswith("bronze/l2/"):
            assert table.cast(L2_SCHEMA).schema == L2_SCHEMA
            assert table.schema.field("levels").type == L2_SCHEMA.field("levels").type
        elif rel.startswith("bronze/diffs/"):
            assert table.cast(DIFF_SCHEMA).schema == DIFF_SCHEMA
        else:
            assert table.schema.field("reason").type == pa.string()
            assert table.schema.field("used_weight_1m").type == pa.int32()


def test_edge_values_decode_as_fastavro_does() -> None:
    ev = tape(5, futures=True)
    l2 = []
    for i, e in enumerate(ev):
        rec = l2_record(e, 50, "b" * (70 + i))  # burst ids past 63 bytes: two-byte lengths
        rec["symbol"] = "ÉTHUSDT" if i % 2 else "BTCUSDT"  # multi-byte UTF-8
        rec["first_update_id"] = (1 << 62) + i  # ten-byte varints
        rec["last_update_id"] = -(1 << 40) - i  # negative zigzag
        rec["event_ts"] = -1_000_000 * i  # before 1970
        if i == 2:
            rec["levels"] = []  # no levels at all
        if i == 3:  # 70 levels a side: a two-byte item count
            rec["levels"] = [{"side": "bid", "px": 1.0 - k, "qty": k * 0.5} for k in range(70)]
            rec["levels"] += [{"side": "ask", "px": 2.0 + k, "qty": -0.0} for k in range(70)]
        l2.append(rec)
    diffs = []
    for i, e in enumerate(ev):
        rec = diff_record(e, "b")
        rec["bids"] = [{"px": f"{k}." + "0" * (k * 9), "qty": "x" * k} for k in range(i * 4)]
        rec["asks"] = [] if i % 2 else [{"px": "", "qty": "€" * 40}]  # empty, 120-byte strings
        diffs.append(rec)
    for codec in ("null", "deflate", "snappy"):
        assert_same_as_fastavro(avro_file("l2", l2, codec))
        assert_same_as_fastavro(avro_file("diffs", diffs, codec))
    # One record per block, then everything in one block.
    assert_same_as_fastavro(avro_file("diffs", diffs, sync_interval=1))
    assert_same_as_fastavro(avro_file("l2", l2 * 50, sync_interval=1 << 30))


def test_an_empty_file_gives_an_empty_table_with_the_lane_types() -> None:
    table = assert_same_as_fastavro(avro_file("l2", []))
    assert table.num_rows == 0
    assert table.cast(L2_SCHEMA).schema == L2_SCHEMA


def _long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(s: str) -> bytes:
    return _long(len(s.encode())) + s.encode()


def _hand_written(
    schema: dict[str, Any], count: int, body: bytes, sync: bytes = b"S" * 16
) -> bytes:
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": b"null"}
    header = MAGIC + _long(len(meta))
    header += b"".join(_string(k) + _long(len(v)) + v for k, v in meta.items()) + _long(0)
    return header + sync + _long(count) + _long(len(body)) + body + sync


ARRAY_SCHEMA = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "ss", "type": {"type": "array", "items": "string"}},
        {"name": "tag", "type": ["null", "string"]},
        {"name": "fs", "type": {"type": "array", "items": "double"}},
    ],
}


def _doubles(*xs: float) -> bytes:
    return np.array(xs, "<f8").tobytes()


def _array_blocks_file() -> bytes:
    """Two records whose arrays come in several blocks, some with byte sizes (negative
    counts), as Java writers write them."""
    # Record 1: xs = [1, 2] as a block of -2 items (with its byte size) then [3]; ss = ["a"];
    # fs = [0.5] then [1.5, 2.5].
    rec1 = _long(-2) + _long(2) + _long(1) + _long(2) + _long(1) + _long(3) + _long(0)
    rec1 += _long(1) + _string("a") + _long(0) + _long(1) + _string("t")
    rec1 += _long(1) + _doubles(0.5) + _long(-2) + _long(16) + _doubles(1.5, 2.5) + _long(0)
    # Record 2: empty arrays, null tag.
    rec2 = _long(0) + _long(0) + _long(0) + _long(0)
    return _hand_written(ARRAY_SCHEMA, 2, rec1 + rec2)


def test_arrays_in_several_blocks_with_byte_sizes_as_other_writers_write_them() -> None:
    table = assert_same_as_fastavro(_array_blocks_file())
    assert table.to_pylist() == [
        {"xs": [1, 2, 3], "ss": ["a"], "tag": "t", "fs": [0.5, 1.5, 2.5]},
        {"xs": [], "ss": [], "tag": None, "fs": []},
    ]


def _edge_files() -> list[bytes]:
    ev = tape(6, futures=True)
    l2 = [l2_record(e, 50, "b") for e in ev]
    l2[2]["levels"] = []
    diffs = [diff_record(e, "b") for e in ev]
    for i, rec in enumerate(diffs):
        rec["bids"] = [{"px": "p" * (k * 30), "qty": str(k)} for k in range(i)]
        rec["transaction_ts"] = None if i % 3 == 0 else rec["transaction_ts"]
        rec["prev_update_id"] = None if i % 2 else rec["prev_update_id"]
    return [avro_file("l2", l2), avro_file("diffs", diffs), _array_blocks_file()]


@pytest.mark.parametrize("pick", ["reversed", "some", "none", "repeated"])
def test_any_selection_of_records_is_built_as_a_take_of_the_whole(pick: str) -> None:
    """What compaction relies on to build the wide columns already deduplicated and sorted."""
    for data in _edge_files():
        decoded = Decoded(open_container(data))
        n = decoded.num_rows
        rows = {
            "reversed": np.arange(n)[::-1],
            "some": np.array([n - 1, 0, n // 2]),
            "none": np.array([], np.int64),
            "repeated": np.array([1, 1, 0]),
        }[pick]
        whole = decoded.table()
        picked = decoded.table(rows=rows)
        assert picked.equals(whole.take(pa.array(rows, pa.int64())))
        assert picked.schema == whole.schema


def test_salvaged_files_decode_as_fastavro_does(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    records = [l2_record(e, 20, "dead") for e in tape(400)]  # several 16 kB blocks
    part = partition_for("l2", records[0]["venue"], records[0]["symbol"], T0, 20)
    with BronzeWriter(store, "dead") as writer:
        for r in records:
            writer.write(part, r)
    (final,) = writer.published
    data = store.read_bytes(final)
    store.delete(final)
    # What a SIGKILLed writer leaves: a temporary cut inside its last block, lock not held.
    Path(store.temp_path_for(final)).write_bytes(data[: len(data) - 40])
    lock = BurstLock(store.lock_path("dead"))
    assert lock.try_acquire()
    lock.release(remove=False)
    assert recover_temporaries(store).files_recovered == 1
    salvaged = store.read_bytes(final)
    assert salvaged != data
    # The complete blocks only: fewer records than written, decoded as fastavro decodes them.
    assert 0 < assert_same_as_fastavro(salvaged).num_rows < len(records)


def test_columns_are_projected_in_the_order_asked() -> None:
    data = avro_file("l2", [l2_record(e, 10, "b") for e in tape(3)])
    table = read_avro_table(data, ["last_update_id", "mid"])
    assert table.column_names == ["last_update_id", "mid"]
    assert table.to_pylist() == [
        {"last_update_id": r["last_update_id"], "mid": r["mid"]} for r in fastavro_records(data)
    ]
    with pytest.raises(KeyError, match="no_such"):
        read_avro_table(data, ["no_such"])


def test_several_files_decode_to_their_records_in_order() -> None:
    ev = tape(40)
    diff_files = [
        avro_file("diffs", [diff_record(e, "b") for e in ev[i : i + 10]]) for i in (0, 10)
    ]
    l2_files = [avro_file("l2", [l2_record(e, 10, "b") for e in ev[i : i + 10]]) for i in (0, 10)]
    for files, names in ((diff_files, DIFF_SCHEMA.names), (l2_files, L2_SCHEMA.names)):
        table = read_avro_tables(iter(files), names)
        assert table is not None
        assert table.to_pylist() == [r for f in files for r in fastavro_records(f)]
    assert read_avro_tables(iter([]), ["x"]) is None
    # One decode for files sharing a writer schema; a new one where the schema changes.
    assert len(decode_files(iter(diff_files))) == 1
    assert len(decode_files(iter([*diff_files, *l2_files, diff_files[0]]))) == 3


def test_damaged_or_foreign_files_are_refused() -> None:
    good = avro_file("diffs", [diff_record(e, "b") for e in tape(20)])
    with pytest.raises(ValueError, match="magic"):
        read_avro_table(b"PAR1" + good[4:])
    with pytest.raises(ValueError, match="sync"):
        read_avro_table(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(ValueError, match=r"truncated|corrupt"):
        read_avro_table(good[: len(good) - 30])
    # Records that do not fill their block exactly: the bytes are not this schema.
    body = _long(0) + _long(0) + _long(0) + b"\x00\x00"
    with pytest.raises(ValueError, match="corrupt"):
        read_avro_table(_hand_written(ARRAY_SCHEMA, 1, body))
    maps = {
        "type": "record",
        "name": "M",
        "fields": [{"name": "m", "type": {"type": "map", "values": "long"}}],
    }
    with pytest.raises(NotImplementedError, match="map"):
        read_avro_table(_hand_written(maps, 1, _long(0)))


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM], ids=lambda v: v.name)
def test_real_capture_bronze_decodes_as_fastavro_does(tmp_path: Path, venue: Venue) -> None:
    """Files of an actual capture burst against the bundled exchange (the capture's own
    record encoding and BronzeWriter blocks), every lane."""
    with SimulatorThread(venue=venue, symbols=["BTCUSDT", "ETHUSDT"], **SIM_DEFAULTS) as sim:
        capture(sim, str(tmp_path), venue, ["BTCUSDT", "ETHUSDT"], duration_s=1.5)
    files = bronze_bytes(LocalStore(str(tmp_path)))
    # The book lanes at least; the stream lanes as the capture and venue provide them.
    assert {"l2", "diffs", "snapshots"} <= {rel.split("/")[1] for rel in files}
    for data in files.values():
        assert_same_as_fastavro(data)
