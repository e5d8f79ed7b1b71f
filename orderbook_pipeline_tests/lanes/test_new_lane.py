"""A lane added by one definition: the registry, the schemas, the encoder, the stream name, the
bronze asset and compaction all pick it up with nothing else edited.

The toy lane lives in this file only; it is registered for a test by putting it in LANES.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest

from orderbook_pipeline.assets.bronze import bronze_specs
from orderbook_pipeline.assets.keys import bronze_key
from orderbook_pipeline.compaction.silver import compact_lane, read_silver_lane
from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.avro_record import record_encoder
from orderbook_pipeline.lanes.avro_types import TS, TS_SOURCE
from orderbook_pipeline.lanes.registry import LANES, lane, stream_name
from orderbook_pipeline.lanes.spec import FIRST_RECEIVED, Lane, asc
from orderbook_pipeline.partitions import hourly_partitions
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import BINANCE_SPOT

T0 = 1_767_225_600_000_000  # an hour start (2026-01-01T00:00Z), µs
SECOND = 1_000_000
VENUE, SYMBOL = "binance-spot", "BTCUSDT"

TOY = Lane(
    name="toy_quotes",
    record="ToyQuoteRecord",
    fields=(
        {"name": "quote_id", "type": "long"},
        {"name": "ts", "type": TS},
        {"name": "ts_source", "type": TS_SOURCE},
        {"name": "ingest_ts", "type": TS},
        {"name": "bid", "type": "double"},
        {"name": "ask", "type": "double"},
        {"name": "bid_str", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ),
    partition_ts="ts",
    key=("quote_id",),
    preference=FIRST_RECEIVED,
    order=asc("quote_id"),
    description="Toy quotes, defined in a test only.",
    feed="stream",
    stream="@toyQuote",
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Lane:
    monkeypatch.setitem(LANES, TOY.name, TOY)
    return TOY


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "data"))


def _record(
    quote_id: int, ingest_us: int, burst: str, note: str | None = None
) -> dict[str, object]:
    return {
        "venue": VENUE,
        "symbol": SYMBOL,
        "quote_id": quote_id,
        "ts": T0 + quote_id * SECOND,
        "ts_source": "exchange",
        "ingest_ts": ingest_us,
        "bid": 100.0 + quote_id,
        "ask": 100.5 + quote_id,
        "bid_str": f"{100 + quote_id}.00",
        "note": note,
        "burst_id": burst,
    }


def test_the_avro_and_arrow_schemas_are_derived_with_the_shared_fields() -> None:
    names = [f["name"] for f in TOY.avro["fields"]]
    assert names[:2] == ["venue", "symbol"] and names[-1] == "burst_id"
    assert names[2:-1] == [f["name"] for f in TOY.fields]
    assert TOY.parsed["name"] == "orderbook_pipeline.ToyQuoteRecord"
    schema = TOY.schema
    assert schema.names == names
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("ts_source").type == pa.string()
    assert schema.field("note").nullable and not schema.field("quote_id").nullable


def test_its_generated_encoder_writes_the_bytes_fastavro_writes() -> None:
    encode = record_encoder(TOY.fields, "encode_toy_quote")
    for note in (None, "crossed"):
        rec = _record(7, T0 + 3, "b1", note)
        prefix = encode_string(VENUE) + encode_string(SYMBOL)
        body = {f["name"]: rec[f["name"]] for f in TOY.fields}
        ours = encode(prefix, **body) + encode_string("b1")
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, TOY.parsed, rec)
        assert ours == buf.getvalue()


def test_the_registry_gives_its_stream_and_bronze_asset(registered: Lane) -> None:
    assert lane("toy_quotes") is registered
    venue = dataclasses.replace(BINANCE_SPOT, stream_lanes=(*BINANCE_SPOT.stream_lanes, TOY.name))
    assert stream_name(venue, TOY.name, SYMBOL) == "btcusdt@toyQuote"
    with pytest.raises(ValueError, match="publishes no stream"):
        stream_name(BINANCE_SPOT, TOY.name, SYMBOL)
    (spec,) = bronze_specs([TOY.name], hourly_partitions("2026-01-01-00:00"))
    assert spec.key == bronze_key(TOY.name)
    assert spec.description is not None and spec.description.startswith(TOY.description)


def test_a_new_lane_compacts_bronze_written_with_its_schema(registered: Lane, store: Store) -> None:
    """Two bursts' bronze with overlapping ids: silver keeps the first received copy of each."""
    part = Partition(TOY.name, VENUE, SYMBOL, T0)
    bursts = {
        "a": [_record(i, T0 + i * SECOND + 10, "a") for i in (1, 2, 3)],
        "b": [_record(i, T0 + i * SECOND + 5, "b", "late") for i in (3, 4, 2)],
    }
    for burst, records in bursts.items():
        out = io.BytesIO()
        fastavro.writer(out, registered.parsed, records, codec="snappy")
        store.write_bytes(part.bronze_file(burst, 0), out.getvalue())

    result = compact_lane(store, TOY.name, VENUE, SYMBOL, T0)
    assert result is not None and result.rows_out == 4
    table = read_silver_lane(store, TOY.name, VENUE, SYMBOL, T0)
    assert table.schema == registered.schema
    assert table.column("quote_id").to_pylist() == [1, 2, 3, 4]
    # Ids 2 and 3 were received first by burst b (earlier ingest_ts).
    assert table.column("burst_id").to_pylist() == ["a", "b", "b", "b"]
