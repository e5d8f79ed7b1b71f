"""The compiled depth decode and diff encoder (core/depth_scan.pyx) against the reference
(core/events.py, core/avro_binary.py): the same outcome for hostile frames, generated frames
and the real recordings in ../shared/real/, and the fast path taking every frame Binance sends.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from orderbook_pipeline.core import depth_codec
from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.depth_codec import DepthCodec
from orderbook_pipeline.core.events import BadEvent, NotDepth
from orderbook_pipeline_tests.cores import load_core

SYMBOLS = frozenset({"BTCUSDT"})
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
PREFIX = encode_string("binance-spot") + encode_string("BTCUSDT")
SUFFIX = encode_string("20261121T120000Z-ab12")


@pytest.fixture(scope="module")
def fast() -> DepthCodec:
    return load_core("compiled").depth  # fails where a compiler could have built it


@pytest.fixture
def no_fallback(fast: DepthCodec, monkeypatch: pytest.MonkeyPatch) -> DepthCodec:
    """The compiled codec with its hand-over to the reference made an error: the fast path
    must take every frame given to it."""
    from orderbook_pipeline.core import depth_scan

    def refuse(frame: Any, *args: Any) -> None:
        raise AssertionError(f"the fast path refused {frame[:300]!r}")

    monkeypatch.setattr(depth_scan, "_decode_reference", refuse)
    return fast


def outcome(codec: DepthCodec, frame: Any, **kw: Any) -> tuple[Any, ...]:
    """What decoding gives, comparable across implementations (repr tells -0.0 from 0.0 and
    every double from every other), with the diff record encoded when there is one."""
    try:
        ev = codec.decode_depth_frame(frame, SYMBOLS, 1_700_000_000_124_000, **kw)
    except BadEvent as exc:
        return ("bad", exc.reason, exc.symbol, str(exc))
    except NotDepth:
        return ("not_depth",)
    record = None
    if ev.raw_levels is not None:
        record = codec.encode_diff(
            PREFIX,
            ev.event_ms * 1000,
            None if ev.transaction_ms is None else ev.transaction_ms * 1000,
            ev.ingest_us,
            ev.first_id,
            ev.last_id,
            ev.prev_id,
            ev.raw_levels,
            SUFFIX,
        )
    return ("ok", repr(msgspec.structs.astuple(ev)), record)


MODES = [
    {"with_prev_id": w, "keep_strings": k, "combined": c}
    for w in (False, True)
    for k in (True, False)
    for c in (True, False)
]


def assert_alike(fast: DepthCodec, frame: Any, payload_frame: Any) -> tuple[Any, ...]:
    """Both implementations agree in every mode; returns the spot, strings-kept outcome."""
    for mode in MODES:
        f = frame if mode["combined"] else payload_frame
        want = outcome(depth_codec.PYTHON, f, **mode)
        assert outcome(fast, f, **mode) == want, (mode, f)
    return outcome(depth_codec.PYTHON, frame, with_prev_id=False)


def payload(**over: Any) -> dict[str, Any]:
    data = {
        "e": "depthUpdate",
        "E": 1700000000123,
        "T": 1700000000120,
        "s": "BTCUSDT",
        "U": 157,
        "u": 160,
        "pu": 156,
        "b": [["65000.01000000", "0.01230000"], ["64999.00000000", "0.00000000"]],
        "a": [["65000.02000000", "1.50000000"]],
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not DROP}


DROP = object()


def dumps(value: Any) -> bytes:
    """Compact JSON as the exchange writes it (json, not orjson: ids past 64 bits too)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def frames_of(data: Any) -> tuple[bytes, bytes]:
    return dumps({"stream": "btcusdt@depth@100ms", "data": data}), dumps(data)


HOSTILE = {
    "nan": {"b": [["65000.01", "NaN"]]},
    "nan_price": {"a": [["nan", "1"]]},
    "inf": {"b": [["inf", "1"]]},
    "infinity": {"b": [["65000.01", "Infinity"]]},
    "huge_exponent": {"b": [["1e400", "1"]]},
    "just_below_bound": {"b": [["9.99e299", "1"]]},
    "the_bound": {"b": [["1e300", "1"]]},
    "exponent": {"b": [["6.5e4", "1E-3"]]},
    "negative_qty": {"a": [["65000.01", "-1.00000000"]]},
    "negative_zero_qty": {"a": [["65000.01", "-0"]]},
    "negative_zero_qty_decimal": {"a": [["65000.01", "-0.0"]]},
    "zero_price": {"a": [["0.00000000", "1"]]},
    "tiny_price": {"a": [["0." + "0" * 320 + "1", "1"]]},
    "numbers_not_strings": {"b": [[65000.01, 5]]},
    "integer_numbers": {"b": [[65000, 5]]},
    "mixed": {"b": [["65000.01", 5]]},
    "three_values": {"b": [["65000.01", "1", "2"]]},
    "one_value": {"b": [["65000.01"]]},
    "not_a_list": {"b": "x"},
    "object_level": {"b": [{"px": "1", "qty": "2"}]},
    "null_side": {"a": None},
    "abc": {"a": [["abc", "1"]]},
    "non_ascii_digits": {"a": [["６５０００", "1"]]},
    "non_ascii": {"a": [["65000.01", "1é"]]},
    "leading_zero": {"b": [["065000.01", "1"]]},
    "leading_dot": {"b": [[".5", "1"]]},
    "trailing_dot": {"b": [["5.", "1"]]},
    "plus": {"b": [["+5", "1"]]},
    "spaces": {"b": [[" 5", "1 "]]},
    "underscore": {"b": [["65_000.01", "1"]]},
    "hex": {"b": [["0x10", "1"]]},
    "empty_string": {"b": [["", "1"]]},
    "long_digits": {"b": [["1" * 400 + ".5", "0." + "3" * 400]]},
    "long_mantissa": {"b": [["1" * 25 + "." + "1" * 25, "0." + "3" * 400]]},
    "many_decimals": {"b": [["0.1000000000000000055511151231257827", "1"]]},
    "long_string": {"b": [["65000.01" + "0" * 5000, "1"]]},
    "empty_sides": {"b": [], "a": []},
    "huge_level_count": {"b": [[f"{i + 1}.5", "1"] for i in range(20_000)]},
    "symbol_number": {"s": 5},
    "symbol_unknown": {"s": "DOGEUSDT"},
    "symbol_unknown_and_numbers": {"s": "DOGEUSDT", "b": [[1, 2]]},
    "symbol_non_ascii": {"s": "BTCÜSDT"},
    "reversed_ids": {"u": 150},
    "equal_ids": {"u": 157},
    "negative_id": {"E": -1},
    "string_id": {"U": "157"},
    "float_id": {"U": 157.0},
    "exponent_id": {"U": 1.57e2},
    "huge_id": {"u": 2**64},
    "id_19_digits": {"U": 10**18, "u": 10**18 + 5},
    "null_pu": {"pu": None},
    "no_pu": {"pu": DROP},
    "no_t": {"T": DROP},
    "no_e": {"e": DROP},
    "other_e": {"e": "trade"},
    "no_bids": {"b": DROP},
    "no_symbol": {"s": DROP},
    "extra_key": {"x": [1, {"y": "z"}]},
}


@pytest.mark.parametrize("over", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_frames_give_the_same_outcome(fast, over):
    assert_alike(fast, *frames_of(payload(**over)))


RAW_HOSTILE = {
    "not_json": b"not json",
    "empty": b"",
    "truncated": frames_of(payload())[0][:-3],
    "trailing": frames_of(payload())[0] + b" x",
    "trailing_ws": frames_of(payload())[0] + b" \n",
    "whitespace": b' { "stream" : "s" , "data" : { "e" : "depthUpdate" , "E" : 1 , "s" : '
    b'"BTCUSDT" , "U" : 1 , "u" : 2 , "pu" : 0 , "b" : [ [ "1.5" , "2" ] ] , "a" : [ ] } } ',
    "escaped_price": b'{"stream":"s","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,'
    b'"u":2,"pu":0,"b":[["\\u0031.5","2"]],"a":[]}}',
    "escaped_key": b'{"stream":"s","data":{"e":"depthUpdate","\\u0045":1,"s":"BTCUSDT",'
    b'"U":1,"u":2,"pu":0,"b":[],"a":[]}}',
    "duplicate_key": b'{"stream":"s","data":{"e":"depthUpdate","E":1,"E":2,"s":"BTCUSDT",'
    b'"U":1,"u":2,"pu":0,"b":[],"a":[]}}',
    "duplicate_side": b'{"stream":"s","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,'
    b'"u":2,"pu":0,"b":[["1","2"]],"a":[],"b":[["3","4"]]}}',
    "asks_first": b'{"stream":"s","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,'
    b'"pu":0,"a":[["3","4"]],"b":[["1","2"]]}}',
    "data_first": b'{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,'
    b'"b":[],"a":[]},"stream":"s"}',
    "no_stream": b'{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}',
    "stream_number": b'{"stream":1,"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,'
    b'"b":[],"a":[]}}',
    "leading_zero_id": b'{"stream":"s","data":{"e":"depthUpdate","E":01,"s":"BTCUSDT","U":1,'
    b'"u":2,"b":[],"a":[]}}',
    "ack": b'{"id":1,"result":null}',
    "control": b'{"stream":"s","data":{"e":"serverShutdown","E":1}}',
    "nested_array": b"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
    "invalid_utf8": b'{"stream":"s\xff","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,'
    b'"u":2,"b":[],"a":[]}}',
}


@pytest.mark.parametrize("frame", RAW_HOSTILE.values(), ids=RAW_HOSTILE.keys())
def test_malformed_frames_give_the_same_outcome(fast, frame):
    assert_alike(fast, frame, frame)  # also read as a plain stream's frame: unknown keys
    text = frame.decode("utf-8", "replace")  # text frames, as the websocket delivers them
    for w in (False, True):
        assert outcome(fast, text, with_prev_id=w) == outcome(
            depth_codec.PYTHON, text, with_prev_id=w
        )


def test_the_usual_frames_take_the_fast_path(no_fallback):
    frame = frames_of(payload())[0]
    ev = no_fallback.decode_depth_frame(frame, SYMBOLS, 7, True)
    assert ev.prev_id == 156 and ev.bids[1] == (64999.0, 0.0)
    assert no_fallback.decode_depth_frame(frame.decode(), SYMBOLS, 7, False).prev_id is None
    for name in ("whitespace", "data_first"):
        no_fallback.decode_depth_frame(RAW_HOSTILE[name], SYMBOLS, 7, False)
    big = frames_of(payload(**HOSTILE["huge_level_count"]))[0]
    assert len(no_fallback.decode_depth_frame(big, SYMBOLS, 7, False).bids) == 20_000
    # Numbers past the exact fast conversion: the correctly rounded one of float() instead.
    for name in ("long_mantissa", "many_decimals", "tiny_price", "long_string", "empty_sides"):
        data = payload(**HOSTILE[name])
        ev = no_fallback.decode_depth_frame(frames_of(data)[0], SYMBOLS, 7, False)
        assert ev.asks == [(float(px), float(qty)) for px, qty in data["a"]]
        strings = data["b"]
        assert ev.bids == [(float(px), float(qty)) for px, qty in strings]


def random_number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:  # the exchange's: fixed decimals
        decimals = rng.choice((0, 1, 2, 3, 5, 8))
        whole = rng.choice((0, rng.randrange(10), rng.randrange(10 ** rng.randrange(1, 12))))
        frac = "".join(rng.choice("0123456789") for _ in range(decimals))
        return f"{whole}.{frac}" if decimals else str(whole)
    if kind < 0.8:  # long mantissas: past 2**53, past 19 digits, past 22 decimals
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 40)))
        point = rng.randrange(len(digits) + 1)
        whole, frac = digits[:point].lstrip("0") or "0", digits[point:]
        return f"{whole}.{frac}" if frac else whole
    if kind < 0.9:  # exponents and signs
        return rng.choice(("-", "")) + f"{rng.random() * 10:.6g}e{rng.randrange(-330, 330)}"
    return rng.choice(("0", "-0", "0.0", "1e300", "9.9e299", "nan", "inf", "", "1_0", " 1", "01"))


def random_payload(rng: random.Random) -> dict[str, Any]:
    first = rng.randrange(10**12)
    data: dict[str, Any] = {
        "e": "depthUpdate",
        "E": rng.randrange(10**13),
        "T": rng.randrange(10**13),
        "s": "BTCUSDT" if rng.random() < 0.95 else "ETHUSDT",
        "U": first,
        "u": first + rng.randrange(-1, 50),
        "pu": first - 1,
        "b": [[random_number(rng), random_number(rng)] for _ in range(rng.randrange(0, 60))],
        "a": [[random_number(rng), random_number(rng)] for _ in range(rng.randrange(0, 60))],
    }
    for key in ("T", "pu"):
        if rng.random() < 0.2:
            del data[key]
    if rng.random() < 0.3:  # another key order (bids still before asks, or not)
        keys = list(data)
        rng.shuffle(keys)
        data = {k: data[k] for k in keys}
    return data


def test_generated_frames_give_the_same_outcome(fast):
    rng = random.Random(13)
    seen = set()
    for _ in range(400):
        data = random_payload(rng)
        if rng.random() < 0.5:  # mostly clean frames, so that many are decoded, not refused
            for side in ("b", "a"):
                data[side] = [lv for lv in data[side] if _clean(lv)]
        frame, payload_frame = frames_of(data)
        if rng.random() < 0.2:
            frame = json.dumps({"stream": "s", "data": data}, indent=rng.randrange(3)).encode()
        seen.add(assert_alike(fast, frame, payload_frame)[0])
    assert seen == {"ok", "bad", "not_depth"}  # every outcome was compared


def _clean(level: list[str]) -> bool:
    try:
        px, qty = float(level[0]), float(level[1])
    except ValueError:
        return False
    return all(c in "0123456789." for c in "".join(level)) and 0 < px < 1e300 and qty < 1e300


def real_frames(name: str, limit: int) -> Iterator[bytes]:
    path = REAL / name / "ws.jsonl.gz"
    if not path.exists():
        pytest.skip(f"the real recordings are not at {path} (see ../shared/real/README.md)")
    with gzip.open(path) as fh:
        frames = (orjson.loads(line)["msg"] for line in fh)
        depth = (m for m in frames if m["data"].get("e") == "depthUpdate")
        yield from (orjson.dumps(m) for m in islice(depth, limit))


@pytest.mark.parametrize(
    ("name", "futures"),
    [
        ("hb_spot_BTCUSDT_20240808", False),
        ("hb_usdm_BTCUSDT_20240808", True),
        ("cf_spot_10sym_20210405", False),
        ("cf_usdm_5sym_20210405", True),
        ("cf_binanceus_10sym_20210405", False),
    ],
)
def test_real_recordings_decode_and_encode_alike_on_the_fast_path(no_fallback, name, futures):
    n = 0
    for frame in real_frames(name, 1500):
        symbols = {orjson.loads(frame)["data"]["s"]}
        for keep in (False, True):
            got = no_fallback.decode_depth_frame(frame, symbols, 5, futures, keep)
            want = depth_codec.PYTHON.decode_depth_frame(frame, symbols, 5, futures, keep)
            assert repr(msgspec.structs.astuple(got)) == repr(msgspec.structs.astuple(want))
        assert got.raw_levels is not None
        transaction_us = None if got.transaction_ms is None else got.transaction_ms * 1000
        args = (PREFIX, got.event_ms * 1000, transaction_us, 5, got.first_id, got.last_id)
        args += (got.prev_id, got.raw_levels, SUFFIX)
        assert no_fallback.encode_diff(*args) == depth_codec.PYTHON.encode_diff(*args)
        n += 1
    assert n == 1500
