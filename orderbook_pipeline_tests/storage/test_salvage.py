"""Salvage of temporaries left by dead writers, and respect for live ones."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest

from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.bronze_writer import BronzeWriter, BurstLock
from orderbook_pipeline.storage.layout import HOUR_US
from orderbook_pipeline.storage.reader import read_avro
from orderbook_pipeline.storage.s3_store import S3Store
from orderbook_pipeline.storage.salvage import recover_temporaries
from orderbook_pipeline.storage.store import StorageError, Store
from orderbook_pipeline_tests.storage.test_bronze_writer import (
    T0,
    FakeClock,
    as_micros,
    part,
    sample_record,
)
from orderbook_pipeline_tests.storage.test_store import make_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


def _two_block_file(store: Store) -> tuple[bytes, int, list[dict]]:
    """Bytes of a bronze temporary holding two flushed blocks of 5 records, and where the
    second block starts."""
    clock = FakeClock()
    recs = [sample_record("l2", i, burst="dead") for i in range(10)]
    with BronzeWriter(store, "dead", clock=clock) as w:
        for half, start in ((1, 0), (2, 5)):
            for r in recs[start : start + 5]:
                w.write(part(), r)
            clock.t += 2
            w.maintain()
            (temp,) = store.stray_temporaries()
            if half == 1:
                first_block_end = os.path.getsize(temp)
        data = Path(temp).read_bytes()
    store.delete(w.published[0])
    return data, first_block_end, recs


def _leave_dead_temp(store: Store, final: str, data: bytes, burst: str = "dead") -> str:
    """A temporary as a SIGKILLed writer leaves it: lock file present but not held."""
    temp = store.temp_path_for(final)
    Path(temp).write_bytes(data)
    lock = BurstLock(store.lock_path(burst))
    assert lock.try_acquire()
    lock.release(remove=False)
    return temp


def test_recovers_flushed_records_of_truncated_temporary(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    data, first_end, recs = _two_block_file(store)
    final = part().bronze_file("dead", 0)
    cut = first_end + (len(data) - first_end) // 2  # killed in the middle of block 2
    temp = _leave_dead_temp(store, final, data[:cut])
    with caplog.at_level(logging.INFO, logger="orderbook_pipeline.storage"):
        report = recover_temporaries(store)
    assert (report.files_recovered, report.records_recovered) == (1, 5)
    assert (report.files_discarded, report.skipped_live) == (0, 0)
    assert report.recovered_paths == [final]
    assert [as_micros(r) for r in read_avro(store, final)] == recs[:5]
    assert not os.path.exists(temp) and store.stray_temporaries() == []
    assert not os.path.exists(store.lock_path("dead"))
    assert "recovered 5 records" in caplog.text
    # Idempotent: nothing left to do.
    assert recover_temporaries(store).files_recovered == 0


def test_complete_temporary_is_recovered_whole(store: Store) -> None:
    data, _, recs = _two_block_file(store)
    final = part().bronze_file("dead", 0)
    _leave_dead_temp(store, final, data)
    assert recover_temporaries(store).records_recovered == 10
    assert [as_micros(r) for r in read_avro(store, final)] == recs


def test_discards_empty_and_torn_temporaries_ignores_other_files(store: Store) -> None:
    data, _, _ = _two_block_file(store)
    empty = _leave_dead_temp(store, part().bronze_file("dead", 1), b"")
    torn = _leave_dead_temp(store, part().bronze_file("dead", 2), data[:40])  # inside header
    other = store.temp_path_for("silver/l2/market=x/data.parquet")  # not bronze: not ours
    Path(other).write_bytes(b"PAR1")
    report = recover_temporaries(store)
    assert (report.files_recovered, report.files_discarded) == (0, 2)
    assert not os.path.exists(empty) and not os.path.exists(torn)
    assert os.path.exists(other)
    assert store.list_files("") == []


def test_leaves_temporaries_of_a_live_writer_alone(store: Store) -> None:
    clock = FakeClock()
    w = BronzeWriter(store, "alive", clock=clock)
    w.write(part(), sample_record("l2", 0))
    clock.t += 2
    w.maintain()
    (temp,) = store.stray_temporaries()
    before = Path(temp).read_bytes()
    report = recover_temporaries(store)
    assert (report.skipped_live, report.files_recovered, report.files_discarded) == (1, 0, 0)
    assert Path(temp).read_bytes() == before and store.list_files("") == []
    w.write(part(), sample_record("l2", 1))
    assert len(w.close()) == 1
    assert [r["last_update_id"] for r in read_avro(store, w.published[0])] == [1001, 1003]


def test_temporary_without_burst_lock_is_not_published(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    data, _, _ = _two_block_file(store)  # a valid file of ours; only its burst lock is missing
    temp = store.temp_path_for(part().bronze_file("planted", 0))
    Path(temp).write_bytes(data)
    idle = time.time() - 3600
    os.utime(temp, (idle, idle))  # long untouched, as a planted file would be
    assert not os.path.exists(store.lock_path("planted"))
    with caplog.at_level(logging.WARNING, logger="orderbook_pipeline.storage"):
        report = recover_temporaries(store)
    assert store.list_files("") == [] and os.path.exists(temp)  # not uploaded, left in place
    assert (report.files_foreign, report.files_recovered, report.skipped_live) == (1, 0, 0)
    assert report.foreign_paths == [temp]
    assert not os.path.exists(store.lock_path("planted"))
    assert temp in caplog.text and "no burst lock" in caplog.text


def _avro(schema: Any, records: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec="null")
    return buf.getvalue()


_PLANTED = fastavro.parse_schema(
    {"type": "record", "name": "Planted", "fields": [{"name": "x", "type": "string"}]}
)


@pytest.mark.parametrize("kind", ["foreign_schema", "other_lane", "symlink"])
def test_planted_file_in_a_locked_burst_is_not_published(
    store: Store, kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, _, recs = _two_block_file(store)
    planted = part().bronze_file("dead", 0)
    if kind == "symlink":  # to a valid file of ours elsewhere: our writer makes plain files
        target = tmp_path / "elsewhere.avro"
        target.write_bytes(data)
        temp = _leave_dead_temp(store, planted, b"")
        os.remove(temp)
        os.symlink(target, temp)
        why = "a symbolic link"
    elif kind == "other_lane":  # the diffs schema under an l2 path
        temp = _leave_dead_temp(
            store, planted, _avro(LANES["diffs"].parsed, [sample_record("diffs")])
        )
        why = "is not the l2 lane's"
    else:
        temp = _leave_dead_temp(store, planted, _avro(_PLANTED, [{"x": "evil"}] * 3))
        why = "Avro schema 'Planted' is not the l2 lane's"
    genuine = part().bronze_file("dead", 1)
    _leave_dead_temp(store, genuine, data)  # a killed writer's file in the same burst
    with caplog.at_level(logging.WARNING, logger="orderbook_pipeline.storage"):
        report = recover_temporaries(store)
    assert store.list_files("") == [genuine]  # the planted one is never uploaded
    assert (report.files_foreign, report.foreign_paths) == (1, [temp])
    assert (report.files_recovered, report.recovered_paths) == (1, [genuine])
    assert [as_micros(r) for r in read_avro(store, genuine)] == recs
    assert os.path.lexists(temp)  # not ours to delete either
    assert os.path.exists(store.lock_path("dead"))  # kept while a temporary of the burst is left
    assert temp in caplog.text and why in caplog.text


def test_failed_publish_at_the_hour_roll_is_salvaged(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = BronzeWriter(store, "b1")
    w.write(part(ts=T0), sample_record("l2", 0))
    real_publish = store.publish

    def full_publish(temp: str, rel: str, durable: bool = True) -> None:
        raise StorageError(f"cannot publish {temp} as {rel}: disk full (ENOSPC)")

    monkeypatch.setattr(store, "publish", full_publish)
    if store.publishes_remotely:
        # Uploaded from the writer's thread: the failure is raised by the next maintain().
        w.write(part(ts=T0 + HOUR_US), sample_record("l2", 1, T0 + HOUR_US))
        assert w.wait_uploaded(10)
        monkeypatch.setattr(store, "publish", real_publish)
        with pytest.raises(StorageError, match="disk full"):
            w.maintain()
    else:
        with pytest.raises(StorageError, match="disk full"):
            w.write(part(ts=T0 + HOUR_US), sample_record("l2", 1, T0 + HOUR_US))
        monkeypatch.setattr(store, "publish", real_publish)
        w.write(part(ts=T0 + HOUR_US), sample_record("l2", 1, T0 + HOUR_US))
    assert w.close() == [part(ts=T0 + HOUR_US).bronze_file("b1", 1)]
    # Its lock file outlives the clean close: the failed file's temporary is still ours.
    assert os.path.exists(store.lock_path("b1"))
    report = recover_temporaries(store)
    assert report.recovered_paths == [part(ts=T0).bronze_file("b1", 0)]
    assert report.files_foreign == 0 and store.stray_temporaries() == []
    assert not os.path.exists(store.lock_path("b1"))


def test_interrupted_salvage_keeps_the_longer_copy(tmp_path: Path) -> None:
    store = make_store("local", tmp_path)
    data, first_end, recs = _two_block_file(store)
    final = part().bronze_file("dead", 0)
    _leave_dead_temp(store, final, data)
    _leave_dead_temp(store, final, data[:first_end])  # a salvage killed mid-way
    report = recover_temporaries(store)
    assert (report.files_recovered, report.records_recovered, report.files_discarded) == (1, 10, 1)
    assert [as_micros(r) for r in read_avro(store, final)] == recs


_KILLED_WRITER = r"""
import sys, time
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline_tests.storage.test_bronze_writer import FakeClock, part, sample_record

root, endpoint, spool = sys.argv[1:4]
store = open_store(root, s3_endpoint_url=endpoint or None, spool_dir=spool or None)
clock = FakeClock()
w = BronzeWriter(store, "killed", clock=clock)
n = 0
for _ in range(2):
    for _ in range(4):
        w.write(part(), sample_record("l2", n, burst="killed"))
        n += 1
    clock.t += 1.5
    w.maintain()
for _ in range(3):  # accepted but never flushed: lost with the process
    w.write(part(), sample_record("l2", n, burst="killed"))
    n += 1
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.timeout(60)
def test_sigkilled_writer_is_salvaged(store: Store) -> None:
    if isinstance(store, S3Store):
        args = [store.root, store.client.meta.endpoint_url, store.spool_dir]
    else:
        args = [store.root, "", ""]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
        # While it lives, its temporary is off limits.
        assert recover_temporaries(store).skipped_live == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    report = recover_temporaries(store)
    assert (report.files_recovered, report.records_recovered) == (1, 8)
    final = part().bronze_file("killed", 0)
    assert store.list_files("") == [final]
    expected = [sample_record("l2", i, burst="killed") for i in range(8)]
    assert [as_micros(r) for r in read_avro(store, final)] == expected
    assert store.stray_temporaries() == []
