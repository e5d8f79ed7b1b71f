"""Recover bronze temporaries left by a writer that died (SIGKILL, OOM, power loss).

A dead writer's temporary holds a valid Avro header and complete blocks up to its last flush,
then possibly a truncated block. Salvage copies the readable records into the temporary's final
name (temp + publish, as any writer does) and deletes the temporary. Temporaries whose burst lock
is still held belong to a live writer and are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import fastavro
from fastavro.write import Writer

from orderbook_pipeline.storage.bronze_writer import BurstLock
from orderbook_pipeline.storage.layout import burst_id_of, partition_of
from orderbook_pipeline.storage.store import StorageError, Store, describe_os_error

log = logging.getLogger("orderbook_pipeline.storage")

# Without a lock file we cannot ask the kernel whether the writer lives; a temporary untouched
# for this long (a writer flushes every ~1 s) is taken as abandoned.
IDLE_GRACE_S = 5.0


@dataclass
class SalvageReport:
    files_recovered: int = 0
    records_recovered: int = 0
    files_discarded: int = 0
    skipped_live: int = 0
    recovered_paths: list[str] = field(default_factory=list)


def recover_temporaries(store: Store, *, idle_grace_s: float = IDLE_GRACE_S) -> SalvageReport:
    """Publish the readable records of every dead writer's bronze temporary; see module doc."""
    report = SalvageReport()
    by_burst: dict[str, dict[str, list[str]]] = {}
    for temp in store.stray_temporaries():
        try:
            final = store.final_path_for_temp(temp)
            burst = burst_id_of(final)
        except ValueError:
            continue
        if final.endswith(".avro") and partition_of(final) is not None:  # bronze only
            by_burst.setdefault(burst, {}).setdefault(final, []).append(temp)

    for burst, finals in sorted(by_burst.items()):
        lock = BurstLock(store.lock_path(burst))
        temps = [t for group in finals.values() for t in group]
        try:
            free = lock.try_acquire(create=False)
        except FileNotFoundError:
            young = [t for t in temps if _idle_seconds(t) < idle_grace_s]
            if young:
                report.skipped_live += len(young)
                finals = {k: [t for t in g if t not in young] for k, g in finals.items()}
                finals = {k: g for k, g in finals.items() if g}
            # Create and hold the lock anyway, so two salvagers never work on one burst.
            free = bool(finals) and lock.try_acquire()
        if not free:
            if finals:
                report.skipped_live += sum(len(g) for g in finals.values())
                log.info("salvage: burst %s is being written by a live process; skipped", burst)
            continue
        try:
            for final, group in sorted(finals.items()):
                _recover_one(store, final, group, report)
        finally:
            leftover = any(os.path.exists(t) for t in temps)
            lock.release(remove=not leftover)
    return report


def _idle_seconds(path: str) -> float:
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")


def _recover_one(store: Store, final: str, temps: list[str], report: SalvageReport) -> None:
    if len(temps) > 1:
        # Only a salvage killed mid-way leaves two temporaries for one final name; its output
        # is a prefix of the original, so the one with the most readable records wins.
        temps = sorted(temps, key=_count_readable, reverse=True)
        for extra in temps[1:]:
            _remove(extra)
            report.files_discarded += 1
    temp = temps[0]
    try:
        n = _copy_readable(store, temp, final)
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


def _copy_readable(store: Store, temp: str, final: str) -> int | None:
    """Write the records readable from `temp` (up to the first error) to `final`.

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
                # The writer schema and codec from the header, so any lane (or version) works.
                out_temp = store.temp_path_for(final)
                out = open(out_temp, "xb")  # noqa: SIM115 - closed below
                codec = reader.metadata.get("avro.codec", "null")
                writer = Writer(out, reader.writer_schema, codec=codec)
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
