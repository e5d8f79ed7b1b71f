"""Silver Parquet files: written atomically through the store, read back by column."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from orderbook_pipeline.storage.store import StorageError, Store

SOURCE_FILES_KEY = b"orderbook_pipeline.source_files"


def write_parquet(
    store: Store,
    rel_path: str,
    table: pa.Table,
    source_files: Sequence[str] = (),
    durable: bool = True,
    plain: Sequence[str] = (),
) -> None:
    """Write `table` as zstd Parquet at `rel_path`, atomically (temporary, then publish).

    The bronze files it was compacted from are kept in the file's key-value metadata, so a
    check can reconcile silver with exactly those while bursts keep adding bronze. The leaf
    columns `plain` (Parquet paths, see plain_leaves) are written without a dictionary.
    """
    if source_files:
        table = table.replace_schema_metadata({SOURCE_FILES_KEY: json.dumps(list(source_files))})
    temp = store.temp_path_for(rel_path)
    # Statistics only for the flat columns: the nested levels/bids/asks are never filtered on,
    # and their min/max cost a fifth of the write.
    flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
    try:
        # One row group per hour keeps the file simple for DuckDB/Athena.
        pq.write_table(
            table,
            temp,
            compression="zstd",
            row_group_size=1 << 20,
            write_statistics=flat,
            use_dictionary=[c for c in leaf_paths(table.schema) if c not in plain]
            if plain
            else True,
        )
        store.publish(temp, rel_path, durable)
    except BaseException as exc:
        # A failed write must leave nothing behind: no final file (publish never happened) and
        # no temporary (Parquet cannot be salvaged like bronze Avro).
        with contextlib.suppress(OSError):
            os.remove(temp)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {rel_path}: {exc}") from exc
        raise


def read_parquet(store: Store, rel_path: str, schema: pa.Schema) -> pa.Table | None:
    """The table at `rel_path` cast to `schema` (only its columns are decoded), or None if
    there is no such file."""
    try:
        data = store.read_bytes(rel_path)
    except FileNotFoundError:
        return None
    return pq.read_table(io.BytesIO(data), columns=schema.names).cast(schema)


def silver_source_files(store: Store, rel_path: str) -> list[str] | None:
    """The bronze files a silver file was compacted from, or None (absent file or metadata)."""
    try:
        data = store.read_bytes(rel_path)
    except FileNotFoundError:
        return None
    meta = pq.read_schema(io.BytesIO(data)).metadata or {}
    raw = meta.get(SOURCE_FILES_KEY)
    return None if raw is None else list(json.loads(raw))


def leaf_paths(schema: pa.Schema) -> list[str]:
    """The Parquet column paths of `schema`'s leaves (lists as Parquet's compliant
    `name.list.element`)."""

    def walk(prefix: str, typ: pa.DataType) -> list[str]:
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            return walk(f"{prefix}.list.element", typ.value_type)
        if pa.types.is_struct(typ):
            return [
                p
                for i in range(typ.num_fields)
                for p in walk(f"{prefix}.{typ.field(i).name}", typ.field(i).type)
            ]
        return [prefix]

    return [p for f in schema for p in walk(f.name, f.type)]


def plain_leaves(avro_fields: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Parquet paths of the enum fields inside arrays of a lane's Avro record (L2's
    levels.side): two symbols repeated millions of times an hour, which zstd packs as well
    without a dictionary, and the dictionary's hash per value was a tenth of the L2 write
    (callgrind, same file size to 0.1 %)."""
    out = []
    for f in avro_fields:
        typ = f["type"]
        if isinstance(typ, dict) and typ.get("type") == "array":
            items = typ["items"]
            if isinstance(items, dict) and items.get("type") == "record":
                out += [
                    f"{f['name']}.list.element.{g['name']}"
                    for g in items["fields"]
                    if isinstance(g["type"], dict) and g["type"].get("type") == "enum"
                ]
    return tuple(out)
