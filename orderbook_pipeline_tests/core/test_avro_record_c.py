"""The compiled record encoders (core/avro_record_c.pyx) against the pure-Python ones they
replace (core/avro_record.py) and fastavro: every lane encoded by a generated encoder, with
values at the edges of each Avro type (varint lengths, negative longs, None in unions,
non-ASCII and long strings, empty and long arrays, NaN and signed zeros)."""

from __future__ import annotations

import io
import math
import random
from typing import Any

import pytest
from fastavro import schemaless_writer

from orderbook_pipeline.capture.stream_lanes import lane_encoders
from orderbook_pipeline.core.avro_record import COMPILED, record_encoder
from orderbook_pipeline.lanes import agg_trades, book_ticker, partial_depth, trades
from orderbook_pipeline.lanes.avro_types import enum_bytes
from orderbook_pipeline.lanes.registry import LANES

pytestmark = pytest.mark.skipif(not COMPILED, reason="core/avro_record_c.pyx is not built")

LANE_MODULES = {"trades": trades, "agg_trades": agg_trades, "book_ticker": book_ticker}
LANE_MODULES["partial_depth"] = partial_depth
LONGS = [0, 1, -1, 63, 64, -64, -65, 2**28 - 1, 2**28, 2**31, 2**62, 2**63 - 1, -(2**63)]
DOUBLES = [0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
STRINGS = ["", "0.00100000", "é€😀", "x" * 63, "y" * 64, "z" * 300]


def _value(avro: Any, rng: random.Random) -> Any:
    if isinstance(avro, list):  # [null, T]
        return None if rng.random() < 0.3 else _value(avro[1], rng)
    kind = avro["type"] if isinstance(avro, dict) else avro
    if kind in ("long", "int"):
        v = rng.choice(LONGS) if rng.random() < 0.5 else rng.randrange(-(2**40), 2**40)
        return max(min(v, 2**31 - 1), -(2**31)) if kind == "int" else v
    if kind == "double":
        return rng.choice(DOUBLES) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
    if kind == "string":
        return rng.choice(STRINGS)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "enum":
        return rng.choice(avro["symbols"])
    if kind == "array":
        n = rng.choice([0, 1, 2, 20, 63, 64, 70])
        return [[rng.choice(STRINGS), rng.choice(STRINGS)] for _ in range(n)]
    raise AssertionError(avro)


def _fastavro(lane: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, LANES[lane].parsed, record)
    return buf.getvalue()


@pytest.mark.parametrize("lane", sorted(LANE_MODULES))
def test_compiled_encoders_equal_the_python_ones_and_fastavro(lane: str) -> None:
    fields = list(LANES[lane].fields)
    compiled = record_encoder(fields, "c", compiled=True)
    python = record_encoder(fields, "p", compiled=False)
    prefix = b"\x02ab\x04cdef"
    rng = random.Random(lane)
    enums = {f["name"]: f["type"] for f in fields if isinstance(f["type"], dict)}
    for _ in range(400):
        values = [_value(f["type"], rng) for f in fields]
        ours = compiled(prefix, *values)
        assert ours == python(prefix, *values)
        record = {"venue": "v", "symbol": "s", "burst_id": "b"}
        for f, v in zip(fields, values, strict=True):
            kind = enums.get(f["name"], {}).get("type")
            record[f["name"]] = [{"px": p, "qty": q} for p, q in v] if kind == "array" else v
        expected = _fastavro(lane, record)
        head = b"\x02v\x02s"
        assert head + compiled(b"", *values) + b"\x02b" == expected


def test_the_stream_lanes_take_the_encoders_of_their_core() -> None:
    assert {type(e).__name__ for e in lane_encoders(True)} == {"Program"}
    assert {type(e).__name__ for e in lane_encoders(False)} == {"function"}
    assert type(book_ticker.encode_head).__name__ == "Program"  # the modules': where built


def test_a_compiled_encoder_refuses_what_the_python_one_refuses() -> None:
    fields = [
        {"name": "n", "type": "long"},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b"]}},
    ]
    compiled, python = (record_encoder(fields, "x", c) for c in (True, False))
    for bad in ([1], [1, "c"], ["1", "a"]):
        with pytest.raises((TypeError, KeyError, OverflowError, ValueError)):
            python(b"", *bad)
        with pytest.raises((TypeError, KeyError, OverflowError, ValueError)):
            compiled(b"", *bad)
    assert enum_bytes(fields[1]["type"])["b"] == compiled(b"", 0, "b")[1:]
    # Beyond an Avro long the Python varint would run on; the compiled one refuses.
    with pytest.raises(OverflowError):
        compiled(b"", 2**63, "a")


def test_a_compiled_encoder_takes_the_field_values_by_name_too() -> None:
    fields = list(LANES["trades"].fields)
    compiled, python = (record_encoder(fields, "x", c) for c in (True, False))
    rng = random.Random(3)
    values = {f["name"]: _value(f["type"], rng) for f in fields}
    first = fields[0]["name"]
    assert compiled(b"p", **values) == python(b"p", **values) == compiled(b"p", *values.values())
    rest = {k: v for k, v in values.items() if k != first}
    assert compiled(b"p", values[first], **rest) == python(b"p", **values)
    with pytest.raises(TypeError, match="missing"):
        compiled(b"p", **rest)
    with pytest.raises(TypeError, match="unexpected"):
        compiled(b"p", **values, other=1)
