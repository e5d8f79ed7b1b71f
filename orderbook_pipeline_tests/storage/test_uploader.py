"""Remote publishing off the writer's caller: retries in order, a bounded end, salvage after."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from orderbook_pipeline.storage.bronze_writer import BronzeWriter, BurstLock
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.reader import read_avro
from orderbook_pipeline.storage.salvage import recover_temporaries
from orderbook_pipeline.storage.store import LocalStore, StorageError
from orderbook_pipeline.storage.uploader import Upload, Uploader, is_transient
from orderbook_pipeline_tests.storage.test_bronze_writer import T0, FakeClock, part, sample_record


class RemoteStore(LocalStore):
    """A local folder that says it publishes remotely, with publish() failures on demand."""

    publishes_remotely = True

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.fail_next = 0  # transient failures still to answer
        self.down = False  # every attempt fails (transiently) while set
        self.delay_s = 0.0
        self.gate: threading.Event | None = None  # publish waits for it, if set
        self.attempts: list[str] = []
        self.published: list[str] = []
        self.threads: set[str] = set()

    def publish(self, temp_path: str, rel_path: str, durable: bool = True) -> None:
        self.attempts.append(rel_path)
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay_s)
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except ConnectionResetError as exc:
                raise StorageError(f"cannot upload {temp_path} to {rel_path}: reset") from exc
        super().publish(temp_path, rel_path, durable)
        self.published.append(rel_path)


def _client_error(status: int, code: str) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


def _wrapped(exc: Exception) -> StorageError:
    try:
        raise StorageError("cannot upload x") from exc
    except StorageError as err:
        return err


def test_what_is_transient() -> None:
    assert is_transient(_wrapped(_client_error(503, "SlowDown")))
    assert is_transient(_client_error(500, "InternalError"))
    assert is_transient(_client_error(429, "TooManyRequests"))
    assert is_transient(_client_error(400, "RequestTimeout"))
    assert is_transient(_wrapped(EndpointConnectionError(endpoint_url="http://x")))
    assert is_transient(_wrapped(ConnectionClosedError(endpoint_url="http://x")))
    assert is_transient(_wrapped(ConnectionResetError(104, "reset")))
    assert is_transient(TimeoutError("timed out"))
    assert not is_transient(_wrapped(_client_error(403, "AccessDenied")))
    assert not is_transient(_wrapped(_client_error(404, "NoSuchBucket")))
    assert not is_transient(_wrapped(FileNotFoundError(2, "No such file or directory")))
    assert not is_transient(StorageError("disk full"))


def _files(tmp_path: Path, n: int) -> list[Upload]:
    spool = tmp_path / "data"
    spool.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        temp = spool / f".f{i}.avro.tmp-x"
        temp.write_bytes(b"x" * (i + 1))
        out.append(Upload(str(temp), f"f{i}.avro", i + 1, 1))
    return out


def test_transient_failures_are_retried_and_each_file_published_once_in_order(
    tmp_path: Path,
) -> None:
    store = RemoteStore(str(tmp_path / "data"))
    store.fail_next = 3
    done: list[str] = []
    up = Uploader(store, lambda u: done.append(u.rel_path), backoff_base_s=0.01)
    for upload in _files(tmp_path, 4):
        up.submit(upload)
    assert up.wait_idle(10)
    assert done == store.published == [f"f{i}.avro" for i in range(4)]
    assert store.attempts == ["f0.avro"] * 4 + ["f1.avro", "f2.avro", "f3.avro"]
    assert (up.retries, up.failures, up.take_errors()) == (3, 0, [])
    exits: list[str] = []
    assert up.finish(1.0, on_exit=lambda: exits.append(threading.current_thread().name)) == []
    assert exits == [threading.current_thread().name]  # the thread was gone: on_exit here
    with pytest.raises(RuntimeError):
        up.submit(_files(tmp_path, 1)[0])


def test_a_failure_that_is_not_transient_is_raised_not_retried(tmp_path: Path) -> None:
    store = RemoteStore(str(tmp_path / "data"))
    w = BronzeWriter(store, "b1")
    w.write(part(ts=T0), sample_record("l2", 0))
    temp = w.handle(part(ts=T0)).temp_path
    os.remove(temp)  # the spool file vanished under the writer: nothing can bring it back
    w.write(part(ts=T0 + HOUR_US), sample_record("l2", 1, T0 + HOUR_US))
    assert w.wait_uploaded(10)
    with pytest.raises(StorageError, match="No such file"):
        w.maintain()
    assert (w.upload_failures, w.upload_retries, w.published) == (1, 0, [])
    assert w.close() == [part(ts=T0 + HOUR_US).bronze_file("b1", 1)]  # raised once only


def test_remote_publishing_does_not_block_the_writers_caller(tmp_path: Path) -> None:
    store = RemoteStore(str(tmp_path / "data"))
    store.delay_s = 1.0  # a slow PUT
    clock = FakeClock()
    w = BronzeWriter(store, "b1", max_file_seconds=10, clock=clock)
    started = time.monotonic()
    for i in range(3):
        w.write(part("snapshots"), sample_record("snapshots", i))
        clock.t += 11
        w.maintain()  # past the bound: the file is complete, its upload queued
    assert time.monotonic() - started < 0.5
    assert w.uploads_pending >= 2 and len(w.published) <= 1
    assert w.close() == [part("snapshots").bronze_file("b1", s) for s in range(3)]
    assert store.threads == {"bronze-upload-b1"}
    assert w.bytes_published == sum(len(store.read_bytes(p)) for p in w.published)
    assert store.stray_temporaries() == [] and not os.path.exists(store.lock_path("b1"))


def test_close_gives_up_after_the_grace_and_salvage_uploads_what_is_left(
    tmp_path: Path,
) -> None:
    store = RemoteStore(str(tmp_path / "data"))
    store.down = True
    w = BronzeWriter(store, "b1", upload_grace_s=1.0)
    w.write(part("diffs"), sample_record("diffs", 0))
    started = time.monotonic()
    assert w.close() == []  # S3 down: not an error, the file is safe in the spool
    assert time.monotonic() - started < 1.0 + 1.0
    assert w.left_for_salvage == 1 and w.upload_retries >= 2
    assert len(store.stray_temporaries()) == 1, "complete, in the spool"
    assert os.path.exists(store.lock_path("b1")), "kept: the temporary is ours, for salvage"
    store.down = False
    report = recover_temporaries(store)
    assert report.recovered_paths == [part("diffs").bronze_file("b1", 0)]
    assert store.published == report.recovered_paths  # once
    assert [r["last_update_id"] for r in read_avro(store, report.recovered_paths[0])] == [1001]
    assert store.stray_temporaries() == [] and not os.path.exists(store.lock_path("b1"))


def test_an_upload_in_flight_at_the_deadline_keeps_the_lock_until_it_ends(
    tmp_path: Path,
) -> None:
    store = RemoteStore(str(tmp_path / "data"))
    store.gate = threading.Event()  # a PUT that hangs
    w = BronzeWriter(store, "b1", upload_grace_s=0.2)
    w.write(part("diffs"), sample_record("diffs", 0))
    assert w.close() == [] and w.left_for_salvage == 1
    # Salvage must not take the file while the attempt may still publish it.
    assert not BurstLock(store.lock_path("b1")).try_acquire(create=False)
    assert recover_temporaries(store).skipped_live == 1
    store.gate.set()  # it lands after all
    deadline = time.monotonic() + 10
    while os.path.exists(store.lock_path("b1")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(store.lock_path("b1")), "released, nothing left to salvage"
    assert w.published == store.published == [part("diffs").bronze_file("b1", 0)]
    assert store.stray_temporaries() == []
