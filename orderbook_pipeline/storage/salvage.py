"""Recover bronze temporaries left by a writer that died (SIGKILL, OOM, power loss).

A dead writer's temporary holds a valid Avro header and complete blocks up to its last flush,
then possibly a truncated block. Salvage copies the readable records into the temporary's final
name (temp + publish, as any writer does) and deletes the temporary. Temporaries whose burst lock
is still held belong to a live writer and are left alone.

Only our own files are published: a temporary must sit at a bronze path, its burst must have a
lock file (BronzeWriter creates it before its first temporary and keeps it while any is left),
and its Avro header must carry exactly the schema our writer writes for the lane. Anything else
is foreign: counted, logged, left in place, never published.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import fastavro
from fastavro.write import Writer

from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.bronze_writer import BurstLock
from orderbook_pipeline.storage.layout import burst_id_of, partition_of
from orderbook_pipeline.storage.store import StorageError, Store, describe_os_error

log = logging.getLogger("orderbook_pipeline.storage")


@dataclass
class SalvageReport:
    files_recovered: int = 0
    records_recovered: int = 0
    files_discarded: int = 0
    skipped_live: int = 0
    recovered_paths: list[str] = field(default_factory=list)
    files_foreign: int = 0  # not written by our bronze writer: left in place, never published
    foreign_paths: list[str] = field(default_factory=list)

    def foreign(self, temp: str, why: str) -> None:
        self.files_foreign += 1
        self.foreign_paths.append(temp)
        log.warning("salvage: %s is not ours (%s): not published, left in place", temp, why)


def recover_temporaries(store: Store) -> SalvageReport:
    """Publish the readable records of every dead writer's bronze temporary; see module doc."""
    report = SalvageReport()
    by_burst: dict[str, dict[tuple[str, str], list[str]]] = {}  # burst -> (final, lane) -> temps
    for temp in store.stray_temporaries():
        try:
            final = store.final_path_for_temp(temp)
            burst = burst_id_of(final)
        except ValueError:
            continue
        lane = _lane_of(final)
        if lane is not None:  # bronze only
            by_burst.setdefault(burst, {}).setdefault((final, lane), []).append(temp)

    for burst, finals in sorted(by_burst.items()):
        lock = BurstLock(store.lock_path(burst))
        temps = [t for group in finals.values() for t in group]
        try:
            free = lock.try_acquire(create=False)
        except FileNotFoundError:
            # Our writer creates the lock file before its first temporary and keeps it while
            # any is left, so a temporary without one was not written by it.
            for temp in temps:
                report.foreign(temp, f"no burst lock {store.lock_path(burst)}")
            continue
        if not free:
            report.skipped_live += len(temps)
            log.info("salvage: burst %s is being written by a live process; skipped", burst)
            continue
        try:
            for (final, lane), group in sorted(finals.items()):
                _recover_one(store, final, lane, group, report)
        finally:
            leftover = any(os.path.lexists(t) for t in temps)
            lock.release(remove=not leftover)
    return report


def _lane_of(final: str) -> str | None:
    """Lane of a final path our writer could have made (`Partition.bronze_file`), else None."""
    p = partition_of(final)
    if p is None or p.lane not in LANES:
        return None
    burst, _, seq = final.rsplit("/", 1)[-1].removesuffix(".avro").rpartition("-")
    if not seq.isdecimal() or final != p.bronze_file(burst, int(seq)):
        return None
    return p.lane


def _verdict(temp: str, lane: str) -> str:
    """Why `temp` is not a file of our writer for `lane`, or "" if it is. An empty or torn
    header (a writer killed before its first flush) passes: it is discarded as unreadable."""
    try:
        # No symlink followed, no FIFO waited on: our writer makes plain files only.
        fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""  # gone meanwhile: _copy_readable says so
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link"
        return f"cannot open: {describe_os_error(exc)}"
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "not a regular file"
        reader, _ = _records(fh)
        if reader is None:
            return ""
        try:
            schema = fastavro.parse_schema(json.loads(reader.metadata["avro.schema"]))
        except Exception as exc:  # a header no fastavro writer of ours makes
            return f"unreadable schema in the header: {type(exc).__name__}: {exc}"
        if schema != LANES[lane].parsed:
            name = schema.get("name") if isinstance(schema, dict) else schema
            return f"Avro schema {name!r} is not the {lane} lane's"
    return ""


def _recover_one(
    store: Store, final: str, lane: str, temps: list[str], report: SalvageReport
) -> None:
    ours = []
    for temp in temps:
        why = _verdict(temp, lane)
        if why:
            report.foreign(temp, why)
        else:
            ours.append(temp)
    if not ours:
        return
    temps = ours
    if len(temps) > 1:
        # Only a salvage killed mid-way leaves two temporaries for one final name; its output
        # is a prefix of the original, so the one with the most readable records wins.
        temps = sorted(temps, key=_count_readable, reverse=True)
        for extra in temps[1:]:
            _remove(extra)
            report.files_discarded += 1
    temp = temps[0]
    try:
        n = _copy_readable(store, temp, final, LANES[lane].parsed)
    except StorageError as exc:
        log.error("salvage: cannot recover %s: %s", temp, exc)
        return
    if n is None:  # vanished meanwhile (another salvager)
        return
    _remove(temp)
    if n:
        report.files_recovered += 1
        report.records_recovered += n
        report.recovered_paths.append(final)
        log.warning("salvage: recovered %d records of %s into %s", n, temp, store.uri(final))
    else:
        report.files_discarded += 1
        log.warning("salvage: discarded %s (no readable record)", temp)


def _records(fh: BinaryIO) -> tuple[Any, str]:
    """(fastavro reader, "") or (None, why the header is unreadable)."""
    try:
        return fastavro.reader(fh, return_record_name=True), ""
    except Exception as exc:  # empty file or torn header
        return None, f"{type(exc).__name__}: {exc}"


def _count_readable(temp: str) -> int:
    n = 0
    try:
        with open(temp, "rb") as fh:
            reader, _ = _records(fh)
            for _ in reader or ():
                n += 1
    except Exception:
        pass  # stop at the first unreadable block, as salvage does
    return n


def _copy_readable(store: Store, temp: str, final: str, schema: Any) -> int | None:
    """Write the records readable from `temp` (up to the first error) to `final`, under
    `schema` (the lane's, which _verdict found in the header).

    Returns the count (0: nothing written), None if `temp` is gone.
    """
    try:
        fh = open(temp, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    out_temp: str | None = None
    out: BinaryIO | None = None
    n = 0
    try:
        reader, why = _records(fh)
        if reader is None:
            log.info("salvage: %s has no readable header (%s)", temp, why)
            return 0
        it = iter(reader)
        writer: Writer | None = None
        while True:
            try:
                rec = next(it)
            except StopIteration:
                break
            except Exception as exc:  # truncated or torn block after a kill: stop here
                log.info("salvage: %s readable up to record %d (%s)", temp, n, exc)
                break
            if writer is None:
                out_temp = store.temp_path_for(final)
                out = open(out_temp, "xb")  # noqa: SIM115 - closed below
                codec = reader.metadata.get("avro.codec", "null")
                writer = Writer(out, schema, codec=codec)
            writer.write(rec)
            n += 1
        if writer is not None and out is not None:
            writer.flush()
            out.close()
            store.publish(out_temp or "", final)
            out_temp = None
        return n
    except OSError as exc:
        raise StorageError(
            f"cannot write salvaged copy of {temp} as {final}: {describe_os_error(exc)}"
        ) from exc
    finally:
        fh.close()
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()
        if out_temp is not None:  # failed before publishing: the original stays for a retry
            _remove(out_temp)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
