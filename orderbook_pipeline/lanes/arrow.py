"""Arrow schemas of the silver tables, derived from each lane's bronze Avro schema (Lane.avro),
so a field added to a lane appears in its silver table without being declared twice.

Rules (they reproduce the silver schemas the project has always written, byte for byte):

- string -> string, enum -> string (its symbol), int -> int32, long -> int64,
  long with timestamp-micros -> timestamp[us, UTC], double -> float64, boolean -> bool;
- array of records -> list of structs (fields in Avro order), array of T -> list of T;
- a top-level field is nullable only when its Avro type is a union with null; fields inside a
  list's structs keep Arrow's defaults (nullable), as the silver files always had them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

_PRIMITIVES = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "bytes": pa.binary(),
}
_LOGICAL = {"timestamp-micros": TS}


def arrow_schema(avro: dict[str, Any]) -> pa.Schema:
    """The silver Arrow schema of a bronze lane's Avro record schema."""
    named: dict[str, Any] = {}
    return pa.schema([_field(f, named, top=True) for f in avro["fields"]])


def _field(avro_field: dict[str, Any], named: dict[str, Any], *, top: bool) -> pa.Field:
    typ = avro_field["type"]
    nullable = True
    if isinstance(typ, list):
        branches = [b for b in typ if b != "null"]
        if len(branches) != 1 or len(typ) != 2:
            raise NotImplementedError(f"union {typ!r}: only [null, T] is supported")
        typ = branches[0]
    elif top:
        nullable = False
    return pa.field(avro_field["name"], _type(typ, named), nullable=nullable)


def _type(avro: Any, named: dict[str, Any]) -> pa.DataType:
    if isinstance(avro, str):
        if avro in _PRIMITIVES:
            return _PRIMITIVES[avro]
        if avro not in named:
            raise NotImplementedError(f"Avro type {avro!r} is not supported")
        return named[avro]
    kind = avro["type"]
    logical = avro.get("logicalType")
    if logical is not None:
        if logical not in _LOGICAL:
            raise NotImplementedError(f"Avro logical type {logical!r} is not supported")
        return _LOGICAL[logical]
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "enum":
        named[avro["name"]] = pa.string()
        return pa.string()
    if kind == "record":
        struct = pa.struct([_field(f, named, top=False) for f in avro["fields"]])
        named[avro["name"]] = struct  # later fields may name it ("StringLevel")
        return struct
    if kind == "array":
        return pa.list_(_type(avro["items"], named))
    raise NotImplementedError(f"Avro type {kind!r} is not supported")
