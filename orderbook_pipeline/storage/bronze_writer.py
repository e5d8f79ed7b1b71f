"""Rolling writer of bronze Avro files: one open file per hourly partition, visible only complete.

Records go to a LOCAL temporary (store.temp_path_for) that is published under its final name
`{burst}-{seq}.avro` when the stream moves to a newer hour, when the file passes its size or age
bound, or at close(). maintain() writes buffered records out as Avro blocks about once a second,
so a process killed with SIGKILL loses at most ~1 s of records: salvage.py recovers the complete
blocks of its temporaries, and the burst lock held here tells salvage which writers are alive.
Files opened together get their flushes spread over the second (FLUSH_PHASES), so a thousand
open files cost a hundred flushes every 100 ms rather than a thousand in one tick.

On a remote store (S3) publishing is an upload: it runs on a thread of its own (uploader.py),
never on the caller's (the capture's event loop), and a complete file waits in the local spool
until it lands. close() gives the uploads a bounded grace; what is still not uploaded then stays
in the spool, complete and locked, for the next burst's salvage (`left_for_salvage`).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO

from fastavro import schemaless_writer
from fastavro.write import Writer

from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import BRONZE_LANES, TEMP_MARK, Partition
from orderbook_pipeline.storage.store import StorageError, Store, describe_os_error
from orderbook_pipeline.storage.uploader import Upload, Uploader

log = logging.getLogger("orderbook_pipeline.storage")

MiB = 1024 * 1024
# Encoded bytes buffered before they are compressed into one Avro block (fastavro's default).
BLOCK_BYTES = 16_000
# How long close() waits for the remote uploads still queued: the burst must end on time even
# when S3 is down (the files left are safe in the spool, for salvage).
UPLOAD_GRACE_S = 20.0
# A new file's first flush comes 1/FLUSH_PHASES to one whole flush interval after it opens (by
# its sequence number), so files opened together (a symbol's lanes, every stream at the hour)
# are flushed in FLUSH_PHASES groups spread over the interval, not all in one tick. A file is
# flushed at least once per interval as before: the crash window does not grow.
FLUSH_PHASES = 10


class BurstLock:
    """Exclusive flock on a per-burst lock file: held while a writer of the burst is alive.

    The kernel drops the lock when the process dies, even on SIGKILL, so salvage can tell
    temporaries of a live writer (lock busy) from those of a dead one (lock free).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, *, create: bool = True) -> bool:
        """Take the lock without waiting: False if another live process holds it.

        With create=False a missing lock file raises FileNotFoundError (salvage uses that).
        """
        try:
            if create:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if not create:
                raise
            raise StorageError(f"cannot create burst lock {self.path}: no such directory") from None
        except OSError as exc:
            raise StorageError(
                f"cannot open burst lock {self.path}: {describe_os_error(exc)}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.path}: {describe_os_error(exc)}") from exc
        self._fd = fd
        with contextlib.suppress(OSError):  # the pid is only a hint for humans; disk may be full
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        return True

    def acquire(self) -> None:
        if not self.try_acquire():
            raise StorageError(f"burst lock {self.path} is held by another live process")

    def release(self, *, remove: bool = True) -> None:
        if self._fd is None:
            return
        if remove:
            # Unlink while still holding the lock, so nobody can lock a stale file meanwhile.
            with contextlib.suppress(OSError):
                os.remove(self.path)
        os.close(self._fd)
        self._fd = None


def live_bursts(store: Store) -> list[str]:
    """The bursts a live process on this machine is writing into `store` (their lock held)."""
    folder = os.path.dirname(store.lock_path("x"))
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".lock"))
    except FileNotFoundError:
        return []
    live = []
    for name in names:
        lock = BurstLock(os.path.join(folder, name))
        try:
            free = lock.try_acquire(create=False)
        except FileNotFoundError:  # ended meanwhile
            continue
        if free:
            lock.release(remove=False)  # a dead writer's lock file stays for salvage to judge
        else:
            live.append(name.removesuffix(".lock"))
    return live


@dataclass
class _Block:
    """Duck-typed fastavro Block for Writer.write_block: records already encoded."""

    num_records: int
    bytes_: io.BytesIO


@dataclass(eq=False)
class _OpenFile:
    partition: Partition
    rel_path: str
    temp_path: str
    fh: BinaryIO
    avro: Writer
    opened_at: float
    last_flush: float
    file_bytes: int = 0  # bytes handed to fh so far (header + complete blocks)
    block: io.BytesIO = field(default_factory=io.BytesIO)
    block_records: int = 0
    records: int = 0
    live: bool = True  # False once published or abandoned: holders must ask for a new one
    lane: str = ""
    dirty: bool = True  # something handed to fh since the last flush (the header, at first)

    def size(self) -> int:
        return self.file_bytes + self.block.tell()


def _stream_key(p: Partition) -> tuple[str, str, str, int | None]:
    return (p.lane, p.venue, p.symbol, p.depth)


class BronzeWriter:
    """Writes records of one capture burst into rolling bronze files.

    Not thread-safe: one caller thread. On a remote store its uploader thread publishes, and
    is the one that appends to `published` and adds to `bytes_published`; the caller may read
    them at any time (`published` only grows, by list.append, atomic in CPython: a slice of it
    is a consistent prefix). A file is listed once it is final, not when it is complete.

    `published` lists the final paths written so far, `bytes_published` their total size, and
    `records_written` counts per lane the records accepted by write() (records of a file that
    later fails are counted, though only its flushed blocks can be salvaged). Remote uploads
    that failed and are retried are counted in `upload_retries`, files given up on in
    `upload_failures` (raised as StorageError too); `left_for_salvage` is set by close().
    """

    def __init__(
        self,
        store: Store,
        burst_id: str,
        *,
        max_file_bytes: int = 64 * MiB,
        max_file_seconds: float = 900,
        flush_interval_s: float = 1.0,
        codec: str = "snappy",
        clock: Callable[[], float] = time.monotonic,
        upload_grace_s: float | None = None,
    ) -> None:
        if not burst_id or "/" in burst_id or burst_id.startswith(".") or TEMP_MARK in burst_id:
            raise ValueError(f"invalid burst id {burst_id!r}")
        Writer(io.BytesIO(), LANES["l2"].parsed, codec=codec)  # fail now on an unknown codec
        self.store = store
        self.burst_id = burst_id
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self.flush_interval_s = flush_interval_s
        self.codec = codec
        self._clock = clock
        self.upload_grace_s = UPLOAD_GRACE_S if upload_grace_s is None else upload_grace_s
        self._seq = 0
        # Open files by stream, then by partition hour: usually one per stream, two briefly when
        # a late record for the previous hour arrives.
        self._open: dict[tuple[str, str, str, int | None], dict[int, _OpenFile]] = {}
        # The same files by next flush time (a heap of (due, seq, file); entries of files no
        # longer live are dropped when they come up), and in opening order (for the age bound).
        self._flush_due: list[tuple[float, int, _OpenFile]] = []
        self._by_age: dict[_OpenFile, None] = {}
        self.published: list[str] = []
        self.records_written: dict[str, int] = dict.fromkeys(BRONZE_LANES, 0)
        self.bytes_published = 0
        self._closed = False
        # Complete files not uploaded within close()'s grace: in the spool, for salvage.
        self.left_for_salvage = 0
        # Temporaries created and not yet published or removed. The lock file stays while any is
        # left: salvage takes only temporaries whose burst has a lock file as ours.
        self._temps: set[str] = set()
        # Guards _temps, published and bytes_published, which the uploader thread updates.
        self._mutex = threading.Lock()
        # Streams whose file failed, with that file: their records after it are refused, since
        # a later file would follow the failed one's lost tail with nothing to say so.
        self._broken: dict[tuple[str, str, str, int | None], str] = {}
        self._lock = BurstLock(store.lock_path(burst_id))
        self._lock.acquire()  # before any temporary exists (see _temps)
        self._uploader: Uploader | None = None
        if store.publishes_remotely:
            self._uploader = Uploader(store, self._uploaded, name=f"bronze-upload-{burst_id}")

    @property
    def upload_retries(self) -> int:
        return self._uploader.retries if self._uploader is not None else 0

    @property
    def upload_failures(self) -> int:
        return self._uploader.failures if self._uploader is not None else 0

    @property
    def uploads_pending(self) -> int:
        """Complete files waiting for their upload (always 0 on a local store)."""
        return self._uploader.pending if self._uploader is not None else 0

    def wait_uploaded(self, timeout_s: float) -> bool:
        """Wait at most `timeout_s` until every complete file is published or given up on;
        True if none is left waiting."""
        return self._uploader is None or self._uploader.wait_idle(timeout_s)

    # -- public -----------------------------------------------------------------------------

    def write(self, partition: Partition, record: dict[str, Any]) -> None:
        """Append one record (a dict matching the lane schema) to the partition's open file.

        An invalid record raises fastavro's TypeError/ValueError and leaves the file untouched;
        an OSError (e.g. disk full) raises StorageError and leaves the temporary for salvage.
        If completing an older file (hour roll, time bound) fails, the StorageError is raised
        before this record is stored.
        """
        schema = LANES[partition.lane].parsed if partition.lane in LANES else None
        if schema is None:
            raise ValueError(f"unknown bronze lane {partition.lane!r}")
        f = self.handle(partition)
        mark = f.block.tell()
        try:
            # Encode into our own block buffer so a bad record can be cut off cleanly; a
            # half-encoded record inside fastavro's buffer would corrupt the whole block.
            schemaless_writer(f.block, schema, record)
        except Exception:
            f.block.seek(mark)
            f.block.truncate()
            raise
        self._appended(f)

    def handle(self, partition: Partition) -> _OpenFile:
        """The open file records of `partition` go to, for append(); valid while `.live`.

        Asking for a newer hour of a stream completes its older-hour files, and a file past
        its age bound is completed and replaced.
        """
        if self._closed:
            raise RuntimeError("BronzeWriter is closed")
        if partition.lane not in LANES:
            raise ValueError(f"unknown bronze lane {partition.lane!r}")
        key = _stream_key(partition)
        if self._broken and key in self._broken:  # empty unless a write failed
            raise StorageError(
                f"bronze stream {partition.lane} {partition.symbol} stopped after a failed write "
                f"to {self._broken[key]}: its later records are not written in this burst"
            )
        hours = self._open.setdefault(key, {})
        if len(hours) > 1 or (hours and partition.hour_start_us not in hours):
            # Roll at the hour: a newer hour of this stream completes its older-hour files.
            older = [f for h, f in hours.items() if h < partition.hour_start_us]
            self._each(older, self._publish)
        f = hours.get(partition.hour_start_us)
        if f is not None and self._clock() - f.opened_at >= self.max_file_seconds:
            self._publish(f)
            f = None
        if f is None:
            f = self._open_file(partition)
        return f

    def append(self, f: _OpenFile, data: bytes) -> None:
        """Append one record already encoded in the lane's Avro binary form (the hot path:
        core/avro_binary.py). The caller keeps `f` from handle() while `f.live` holds."""
        if not f.live:
            raise RuntimeError(f"bronze file {f.rel_path} is no longer open")
        block = f.block
        block.write(data)
        f.block_records += 1
        f.records += 1
        self.records_written[f.lane] += 1
        size = block.tell()
        if size >= BLOCK_BYTES:
            self._dump(f)
            size = 0
        if f.file_bytes + size >= self.max_file_bytes:
            self._publish(f)

    def _appended(self, f: _OpenFile) -> None:
        f.block_records += 1
        f.records += 1
        self.records_written[f.lane] += 1
        size = f.block.tell()
        if size >= BLOCK_BYTES:
            self._dump(f)
            size = 0
        if f.file_bytes + size >= self.max_file_bytes:
            self._publish(f)

    def maintain(self) -> None:
        """Call often (~every 100 ms): flush blocks older than flush_interval_s, publish files
        older than max_file_seconds; raise the uploads that failed for good since last time.

        Costs what is due, not what is open: files wait in a heap by their next flush and in
        opening order for their age bound (a thousand open files were scanned every call).
        """
        now = self._clock()
        errors: list[str] = []
        aged = []
        for f in self._by_age:  # in opening order: the oldest first
            if now - f.opened_at < self.max_file_seconds:
                break
            aged.append(f)
        try:
            self._each(aged, self._publish)
        except StorageError as exc:
            errors.append(str(exc))
        heap, due = self._flush_due, []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if entry[2].live:  # else published or failed since it was scheduled
                due.append(entry)
        for _, n, f in due:
            try:
                if f.block_records or f.dirty:
                    self._flush(f, now)
            except StorageError as exc:
                errors.append(str(exc))
            if f.live:
                heapq.heappush(heap, (now + self.flush_interval_s, n, f))
        if self._uploader is not None:
            errors += [str(e) for e in self._uploader.take_errors()]
        _raise_all(errors)

    def close(self) -> list[str]:
        """Publish every open file (empty ones are discarded); return all published paths.

        Tries every file before raising one StorageError that lists the failures. On a remote
        store, waits at most `upload_grace_s` for the uploads; the files not uploaded by then
        are not a failure: they stay in the spool for salvage, counted in `left_for_salvage`.
        """
        if self._closed:
            return list(self.published)
        errors: list[str] = []
        try:
            self._each(self._all_open(), self._publish)
        except StorageError as exc:
            errors.append(str(exc))
        finally:
            self._closed = True
            if self._uploader is None:
                self._release_lock()
            else:
                errors += self._finish_uploads(self._uploader)
        _raise_all(errors)
        return list(self.published)

    def __enter__(self) -> BronzeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _finish_uploads(self, uploader: Uploader) -> list[str]:
        # The lock is released by whoever is last: here, or the upload thread if an attempt is
        # still in flight (it may yet publish, and salvage must not take its file meanwhile).
        left = uploader.finish(self.upload_grace_s, on_exit=self._release_lock)
        self.left_for_salvage = len(left)
        if left:
            log.warning(
                "%d bronze file(s) not uploaded within %.0f s (%d failed attempts): left complete "
                "in the spool %s for the next burst's salvage, e.g. %s",
                len(left),
                self.upload_grace_s,
                uploader.retries,
                self.store.local_base(),
                left[0].rel_path,
            )
        return [str(e) for e in uploader.take_errors()]

    def _release_lock(self) -> None:
        # Temporaries left by a failure (now or earlier in the burst) or not uploaded in time
        # stay for salvage, which takes them as a dead writer's by the lock file that outlives it.
        with self._mutex:
            temps = list(self._temps)
        self._lock.release(remove=not any(os.path.exists(t) for t in temps))

    def _uploaded(self, upload: Upload) -> None:
        """On the upload thread: `upload` is final."""
        self._published(upload.temp_path, upload.rel_path, upload.size, upload.records)

    def _all_open(self) -> list[_OpenFile]:
        return [f for hours in self._open.values() for f in hours.values()]

    @staticmethod
    def _each(files: Iterable[_OpenFile], op: Callable[[_OpenFile], None]) -> None:
        # One failing file must not stop the others from being flushed or published.
        errors = []
        for f in list(files):
            try:
                op(f)
            except StorageError as exc:
                errors.append(str(exc))
        _raise_all(errors)

    def _open_file(self, partition: Partition) -> _OpenFile:
        seq = self._seq
        rel = partition.bronze_file(self.burst_id, seq)
        self._seq += 1
        temp = self.store.temp_path_for(rel)
        with self._mutex:
            self._temps.add(temp)
        fh: BinaryIO | None = None
        try:
            fh = open(temp, "xb")  # noqa: SIM115 - lives until the file is published
            avro = Writer(fh, LANES[partition.lane].parsed, codec=self.codec)
            size = fh.tell()
        except OSError as exc:
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()
            self._remove_temp(temp)  # no record in it yet
            raise StorageError(
                f"cannot create bronze temporary {temp} for {rel}: {describe_os_error(exc)}"
            ) from exc
        now = self._clock()
        f = _OpenFile(
            partition, rel, temp, fh, avro, now, now, file_bytes=size, lane=partition.lane
        )
        self._open.setdefault(_stream_key(partition), {})[partition.hour_start_us] = f
        self._by_age[f] = None
        phase = (FLUSH_PHASES - seq % FLUSH_PHASES) / FLUSH_PHASES  # 1, 0.9, ..., 0.1
        heapq.heappush(self._flush_due, (now + self.flush_interval_s * phase, seq, f))
        return f

    def _dump(self, f: _OpenFile) -> None:
        """Compress the buffered records into one Avro block and hand it to the file."""
        if not f.block_records:
            return
        try:
            f.avro.write_block(_Block(f.block_records, f.block))
            f.file_bytes = f.fh.tell()
        except OSError as exc:
            self._fail(f, exc)
        f.block.seek(0)
        f.block.truncate()
        f.block_records = 0
        f.dirty = True

    def _flush(self, f: _OpenFile, now: float) -> None:
        self._dump(f)
        try:
            f.fh.flush()  # to the OS: survives SIGKILL (not a power cut; publish fsyncs)
        except OSError as exc:
            self._fail(f, exc)
        f.dirty = False
        f.last_flush = now

    def _forget(self, f: _OpenFile) -> None:
        f.live = False
        self._by_age.pop(f, None)
        hours = self._open.get(_stream_key(f.partition), {})
        if hours.get(f.partition.hour_start_us) is f:
            del hours[f.partition.hour_start_us]

    def _fail(self, f: _OpenFile, exc: OSError) -> None:
        # The file is abandoned as is: its complete blocks are salvageable. Its stream writes
        # nothing more in this burst: the records of its unwritten block are lost, and the next
        # burst's resync marks the seam (a later file here would hide the hole).
        self._forget(f)
        self._broken[_stream_key(f.partition)] = f.rel_path
        with contextlib.suppress(OSError):
            f.fh.close()
        raise StorageError(
            f"cannot write bronze file {f.rel_path} (temporary {f.temp_path}, left for salvage): "
            f"{describe_os_error(exc)}"
        ) from exc

    def _publish(self, f: _OpenFile) -> None:
        self._forget(f)
        if f.records == 0:
            with contextlib.suppress(OSError):
                f.fh.close()
            self._remove_temp(f.temp_path)
            return
        self._dump(f)
        try:
            f.fh.close()  # flushes; store.publish fsyncs before the file gets its final name
        except OSError as exc:
            self._fail(f, exc)
        if self._uploader is not None:
            # Complete: the upload thread fsyncs and uploads it, retrying as long as needed.
            self._uploader.submit(Upload(f.temp_path, f.rel_path, f.file_bytes, f.records))
            return
        self.store.publish(f.temp_path, f.rel_path)  # StorageError leaves the temporary
        self._published(f.temp_path, f.rel_path, f.file_bytes, f.records)

    def _published(self, temp: str, rel: str, size: int, records: int) -> None:
        with self._mutex:
            self._temps.discard(temp)
            self.bytes_published += size
            self.published.append(rel)  # last: readers see a file once its bytes are counted
        log.debug("published %s (%d records, %d bytes)", rel, records, size)

    def _remove_temp(self, temp: str) -> None:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        except OSError:
            return  # still there: it keeps the lock file (see _temps)
        with self._mutex:
            self._temps.discard(temp)


def _raise_all(errors: list[str]) -> None:
    """Raise one StorageError naming every failure, if any."""
    if len(errors) == 1:
        raise StorageError(errors[0])
    if errors:
        raise StorageError(f"{len(errors)} bronze files failed:\n  " + "\n  ".join(errors))
