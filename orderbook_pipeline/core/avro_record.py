"""Avro binary encoders generated from a lane's field list, so the field order and enum bytes are
read from the one definition (lanes/) and not restated by hand.

An encoder is compiled once per lane at import, as source text (the technique of namedtuple and
dataclasses): one call per field, consecutive doubles in one struct.pack, each enum a dict
lookup. It runs as fast as the hand-written join it replaced, since it is the same code.

Where the compiled core is built, the same field list becomes a program of one op byte per
field run in C (core/avro_record_c.pyx: one buffer, no bytes object per field, about four
times faster); the Python encoder stays the reference and the fallback. Tests compare every
byte of both with each other and with fastavro's encoding of the same record.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from struct import Struct
from typing import Any

from orderbook_pipeline.core.avro_binary import encode_long, encode_string, string_pairs
from orderbook_pipeline.lanes.avro_types import enum_bytes

_Program: Any
try:
    from orderbook_pipeline.core.avro_record_c import Program as _Program
except ImportError:  # not built (no compiler): the Python encoders
    _Program = None

_STRING_PAIR_FIELDS = [{"name": "px", "type": "string"}, {"name": "qty", "type": "string"}]

# The op kinds of a compiled program (core/avro_record_c.pyx holds the same numbers).
_LONG, _STRING, _DOUBLE, _BOOLEAN, _ENUM, _STRING_PAIRS = range(6)
_OPTIONAL = 16
COMPILED = _Program is not None


def record_encoder(
    fields: Sequence[Mapping[str, Any]], name: str, compiled: bool | None = None
) -> Callable[..., bytes]:
    """A function `(prefix, <one argument per field, in order>) -> bytes`: the already
    encoded prefix followed by the fields' Avro binary, in the order of `fields`.

    The field values may also be given by name (slower). compiled: None takes the compiled
    encoder where it is built, True requires it, False gives the Python one (the reference)."""
    if compiled is None:
        compiled = COMPILED
    if compiled:
        if _Program is None:
            raise RuntimeError("the compiled core (core/avro_record_c) is not built")
        ops, enums = zip(*(_op(f["type"]) for f in fields), strict=True) if fields else ((), ())
        names = tuple(f["name"] for f in fields)
        encode: Callable[..., bytes] = _Program(bytes(ops), tuple(enums), names)
        return encode
    return _python_encoder(fields, name)


def _op(avro: Any) -> tuple[int, dict[str, bytes] | None]:
    """The compiled program's op (and enum table) for a field of Avro type `avro`."""
    if isinstance(avro, list):
        if len(avro) != 2 or avro[0] != "null":
            raise NotImplementedError(f"union {avro!r}: only [null, T] is supported")
        op, table = _op(avro[1])
        return op | _OPTIONAL, table
    kind = avro["type"] if isinstance(avro, dict) else avro
    simple = {"long": _LONG, "int": _LONG, "string": _STRING, "double": _DOUBLE}
    if kind in simple:
        return simple[kind], None
    if kind == "boolean":
        return _BOOLEAN, None
    if kind == "enum":
        return _ENUM, enum_bytes(avro)
    if kind == "array" and _is_string_level(avro["items"]):
        return _STRING_PAIRS, None
    raise NotImplementedError(f"Avro type {avro!r} has no generated encoding")


def _python_encoder(fields: Sequence[Mapping[str, Any]], name: str) -> Callable[..., bytes]:
    env: dict[str, Any] = {
        "_long": encode_long,
        "_string": encode_string,
        "_pairs": string_pairs,
        "_NULL": b"\x00",
        "_SOME": b"\x02",
        "_TRUE": b"\x01",
    }
    params: list[str] = []
    parts: list[str] = ["prefix"]
    doubles: list[str] = []

    def flush_doubles() -> None:
        if doubles:
            packer = f"_doubles{len(parts)}"
            env[packer] = Struct("<" + "d" * len(doubles)).pack
            parts.append(f"{packer}({', '.join(doubles)})")
            doubles.clear()

    for field in fields:
        arg = field["name"]
        if not arg.isidentifier() or keyword.iskeyword(arg) or arg == "prefix":
            raise ValueError(f"field name {arg!r} cannot be an argument name")
        params.append(arg)
        if field["type"] == "double":
            doubles.append(arg)
            continue
        flush_doubles()
        parts.append(_expression(arg, field["type"], env))
    flush_doubles()
    source = (
        f"def {name}(prefix, {', '.join(params)}):\n    return b''.join(({', '.join(parts)},))\n"
    )
    exec(compile(source, f"<avro encoder {name}>", "exec"), env)
    encoder: Callable[..., bytes] = env[name]
    return encoder


def _expression(arg: str, avro: Any, env: dict[str, Any]) -> str:
    """The Python expression encoding the value `arg` of Avro type `avro`."""
    if isinstance(avro, list):
        if len(avro) != 2 or avro[0] != "null":
            raise NotImplementedError(f"union {avro!r}: only [null, T] is supported")
        return f"(_NULL if {arg} is None else _SOME + {_expression(arg, avro[1], env)})"
    kind = avro["type"] if isinstance(avro, dict) else avro
    if kind in ("long", "int"):  # timestamps too: a long with a logical type
        return f"_long({arg})"
    if kind == "string":
        return f"_string({arg})"
    if kind == "boolean":
        return f"(_TRUE if {arg} else _NULL)"
    if kind == "enum":
        table = f"_enum_{avro['name']}"
        env[table] = enum_bytes(avro)
        return f"{table}[{arg}]"
    if kind == "array" and _is_string_level(avro["items"]):
        return f"_pairs({arg})"
    raise NotImplementedError(f"Avro type {avro!r} has no generated encoding")


def _is_string_level(items: Any) -> bool:
    if items == "StringLevel":
        return True
    return isinstance(items, dict) and items.get("fields") == _STRING_PAIR_FIELDS
