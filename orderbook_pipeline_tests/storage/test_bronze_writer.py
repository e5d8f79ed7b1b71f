"""BronzeWriter: rolling, naming, flushing and failure behaviour, on local folder and S3."""

from __future__ import annotations

import errno
import io
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from orderbook_pipeline.storage import bronze_writer
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.layout import HOUR_US, Partition, partition_for
from orderbook_pipeline.storage.reader import iter_lane_records, read_avro
from orderbook_pipeline.storage.store import StorageError, Store
from orderbook_pipeline_tests.storage.test_store import make_store

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
VENUE, SYMBOL = "binance-spot", "BTCUSDT"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sample_record(lane: str, i: int = 0, ts: int = T0, burst: str = "b1") -> dict[str, Any]:
    """A valid record of `lane`, distinct per i; timestamps in int µs."""
    if lane == "l2":
        bids = [{"side": "bid", "px": 100.0 - k * 0.5, "qty": 1.0 + k} for k in range(3)]
        asks = [{"side": "ask", "px": 100.5 + k * 0.5, "qty": 2.0} for k in range(3)]
        return {
            "venue": VENUE,
            "symbol": SYMBOL,
            "event_ts": ts,
            "ingest_ts": ts + 1500,
            "first_update_id": 1000 + 2 * i,
            "last_update_id": 1001 + 2 * i,
            "prev_update_id": None if i % 2 else 999 + 2 * i,
            "depth": 10,
            "levels": bids + asks,
            "mid": 100.25,
            "spread_bps": 49.875,
            "imbalance": 0.0,
            "gap_detected": i == 0,
            "recovered": False,
            "burst_id": burst,
        }
    if lane == "diffs":
        return {
            "venue": VENUE,
            "symbol": SYMBOL,
            "event_ts": ts,
            "transaction_ts": ts - 10 if i % 2 else None,
            "ingest_ts": ts + 900,
            "first_update_id": 1000 + 2 * i,
            "last_update_id": 1001 + 2 * i,
            "prev_update_id": None,
            "bids": [{"px": "100.00000000", "qty": f"{i}.50000000"}],
            "asks": [],
            "burst_id": burst,
        }
    return {
        "venue": VENUE,
        "symbol": SYMBOL,
        "last_update_id": 5000 + i,
        "request_ts": ts,
        "response_ts": ts + 20_000,
        "limit": 1000,
        "used_weight_1m": 20 if i % 2 else None,
        "bids": [{"px": "99.90", "qty": "3.0"}],
        "asks": [{"px": "100.10", "qty": "4.0"}],
        "reason": "bootstrap",
        "burst_id": burst,
    }


def part(lane: str = "l2", ts: int = T0, depth: int | None = 10) -> Partition:
    return partition_for(lane, VENUE, SYMBOL, ts, depth if lane == "l2" else None)


def as_micros(record: dict[str, Any]) -> dict[str, Any]:
    """Records as written: fastavro decodes timestamp-micros to datetimes."""
    return {
        k: (v - _EPOCH) // timedelta(microseconds=1) if isinstance(v, datetime) else v
        for k, v in record.items()
    }


def readable_records(path: str) -> list[dict[str, Any]]:
    """Records of a possibly incomplete Avro file, up to the first unreadable block."""
    out = []
    with open(path, "rb") as fh:
        try:
            for rec in fastavro.reader(fh):
                out.append(as_micros(rec))
        except Exception:
            pass
    return out


def test_round_trips_every_lane(store: Store) -> None:
    written = {
        lane: [sample_record(lane, i) for i in range(3)] for lane in ("l2", "diffs", "snapshots")
    }
    with BronzeWriter(store, "b1") as w:
        for lane, recs in written.items():
            for r in recs:
                w.write(part(lane), r)
    assert {k: n for k, n in w.records_written.items() if n} == {
        "l2": 3,
        "diffs": 3,
        "snapshots": 3,
    }
    assert sorted(w.published) == store.list_files("bronze/")
    assert w.bytes_published == sum(len(store.read_bytes(p)) for p in w.published)
    for lane, recs in written.items():
        assert [as_micros(r) for r in iter_lane_records(store, lane)] == recs
    assert [as_micros(r) for r in iter_lane_records(store, "l2", VENUE, SYMBOL, 10)] == written[
        "l2"
    ]
    assert list(iter_lane_records(store, "l2", depth=20)) == []
    assert list(iter_lane_records(store, "l2", symbol="ETHUSDT")) == []
    assert store.stray_temporaries() == []


def test_names_files_per_layout_and_rolls_at_the_hour(store: Store) -> None:
    h0, h1 = T0, T0 + HOUR_US
    w = BronzeWriter(store, "burst-7")
    w.write(part(ts=h0), sample_record("l2", 0, h0))
    w.write(part(ts=h0, depth=20), sample_record("l2", 1, h0))
    w.write(part(ts=h0 + 5), sample_record("l2", 2, h0 + 5))
    assert store.list_files("") == []  # nothing complete yet
    w.write(part(ts=h1), sample_record("l2", 3, h1))
    # The depth-10 stream moved on: its hour-0 file is final; depth 20 is another stream.
    # (On S3 it is uploaded from the writer's own thread: final a moment later.)
    assert w.wait_uploaded(10)
    assert store.list_files("") == [part(ts=h0).bronze_file("burst-7", 0)]
    assert store.list_files("")[0].endswith(
        "bronze/l2/market=binance-spot/symbol=BTCUSDT/dt=2026-01-01/hour=00/depth=10/burst-7-0.avro"
    )
    # A late record for the previous hour gets a new file, completed by the next newer record.
    w.write(part(ts=h0 + 9), sample_record("l2", 4, h0 + 9))
    w.write(part(ts=h1 + 1), sample_record("l2", 5, h1 + 1))
    assert w.wait_uploaded(10)
    assert part(ts=h0).bronze_file("burst-7", 3) in store.list_files("")
    published = w.close()
    assert sorted(published) == sorted(
        [
            part(ts=h0).bronze_file("burst-7", 0),
            part(ts=h0, depth=20).bronze_file("burst-7", 1),
            part(ts=h1).bronze_file("burst-7", 2),
            part(ts=h0).bronze_file("burst-7", 3),
        ]
    )
    got = {p: [r["last_update_id"] for r in read_avro(store, p)] for p in published}
    assert got[part(ts=h1).bronze_file("burst-7", 2)] == [1007, 1011]
    assert got[part(ts=h0).bronze_file("burst-7", 3)] == [1009]


def test_rolls_at_size_bound(store: Store) -> None:
    w = BronzeWriter(store, "b1", max_file_bytes=3000)
    for i in range(60):
        w.write(part("diffs"), sample_record("diffs", i))
    paths = w.close()
    assert len(paths) > 2
    sizes = [len(store.read_bytes(p)) for p in paths]
    assert max(sizes) < 3000 + 500  # bound checked after each record
    recs = [
        r
        for p in sorted(paths, key=lambda p: int(p.rsplit("-", 1)[1][:-5]))
        for r in read_avro(store, p)
    ]
    assert [r["last_update_id"] for r in recs] == [1001 + 2 * i for i in range(60)]


def test_rolls_at_time_bound(store: Store) -> None:
    clock = FakeClock()
    w = BronzeWriter(store, "b1", max_file_seconds=10, clock=clock)
    w.write(part("snapshots"), sample_record("snapshots", 0))
    clock.t += 9
    w.maintain()
    assert store.list_files("") == []
    clock.t += 1
    w.maintain()  # past the bound: published without a new record
    assert w.wait_uploaded(10)
    assert store.list_files("") == [part("snapshots").bronze_file("b1", 0)]
    w.write(part("snapshots"), sample_record("snapshots", 1))
    clock.t += 11
    w.write(part("snapshots"), sample_record("snapshots", 2))  # old file closes, new one opens
    assert w.wait_uploaded(10)
    assert len(store.list_files("")) == 2
    assert w.close() == [part("snapshots").bronze_file("b1", s) for s in range(3)]


def test_maintain_flushes_blocks_to_the_temporary(store: Store) -> None:
    clock = FakeClock()
    w = BronzeWriter(store, "b1", flush_interval_s=1.0, clock=clock)
    recs = [sample_record("l2", i) for i in range(5)]
    for r in recs[:3]:
        w.write(part(), r)
    (temp,) = store.stray_temporaries()
    clock.t += 0.5
    w.maintain()  # not due yet
    assert readable_records(temp) == []
    clock.t += 0.6
    w.maintain()
    snapshot = temp + ".copy"
    shutil.copyfile(temp, snapshot)
    for r in recs[3:]:
        w.write(part(), r)
    shutil.copyfile(temp, snapshot + "2")
    assert readable_records(snapshot) == recs[:3]
    assert readable_records(snapshot + "2") == recs[:3]  # later records wait for the next flush
    clock.t += 1.1
    w.maintain()
    assert readable_records(temp) == recs
    os.remove(snapshot)
    os.remove(snapshot + "2")
    w.close()
    assert [as_micros(r) for r in read_avro(store, w.published[0])] == recs


def test_files_opened_together_flush_spread_over_the_interval(store: Store) -> None:
    """Twenty files opened in one tick are flushed in ten groups over the next second, each
    within one flush interval of its first record (the crash window), and again a second
    later."""
    clock = FakeClock()
    w = BronzeWriter(store, "b1", flush_interval_s=1.0, clock=clock)
    for depth in range(1, 21):
        w.write(part(depth=depth), sample_record("l2", depth))
    temps = store.stray_temporaries()
    assert len(temps) == 20
    flushed_at: dict[str, int] = {}
    for tick in range(1, 11):  # maintain every 100 ms, as the burst does
        clock.t += 0.1
        w.maintain()
        for t in temps:
            if t not in flushed_at and readable_records(t):
                flushed_at[t] = tick
    assert sorted(flushed_at.values()) == sorted(list(range(1, 11)) * 2)
    for depth in range(1, 21):  # one more record each: flushed one interval after the first
        w.write(part(depth=depth), sample_record("l2", 100 + depth))
    clock.t += 1.0
    w.maintain()
    assert all(len(readable_records(t)) == 2 for t in temps)
    w.close()


def test_close_discards_empty_files_and_bad_records_do_not_corrupt(store: Store) -> None:
    w = BronzeWriter(store, "b1")
    w.write(part("diffs"), sample_record("diffs", 0))
    with pytest.raises((TypeError, ValueError)):
        w.write(part("diffs"), {**sample_record("diffs", 1), "first_update_id": "nope"})
    w.write(part("diffs"), sample_record("diffs", 2))
    with pytest.raises((TypeError, ValueError)):  # opens a file that stays empty
        w.write(part("snapshots"), {**sample_record("snapshots"), "reason": "bogus"})
    assert len(store.stray_temporaries()) == 2
    assert w.close() == [part("diffs").bronze_file("b1", 0)]
    assert [r["last_update_id"] for r in read_avro(store, w.published[0])] == [1001, 1005]
    assert store.stray_temporaries() == []
    assert w.close() == w.published  # idempotent
    with pytest.raises(RuntimeError):
        w.write(part("diffs"), sample_record("diffs", 3))


def test_burst_lock_is_exclusive_while_open(store: Store) -> None:
    w = BronzeWriter(store, "b1")
    with pytest.raises(StorageError, match="held by another live process"):
        BronzeWriter(store, "b1")
    BronzeWriter(store, "b2").close()
    w.close()
    assert not os.path.exists(store.lock_path("b1"))
    BronzeWriter(store, "b1").close()


class _DiskFull:
    on = False


class _FlakyFileIO(io.FileIO):
    def write(self, b: Any) -> int:
        if _DiskFull.on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(b)


def _flaky_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    assert mode == "xb"
    return io.BufferedWriter(_FlakyFileIO(path, "x"))


def test_disk_full_while_writing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bronze_writer, "open", _flaky_open, raising=False)
    monkeypatch.setattr(_DiskFull, "on", False)
    clock = FakeClock()
    w = BronzeWriter(store, "b1", clock=clock)
    w.write(part(ts=T0), sample_record("l2", 0))
    w.write(part(ts=T0 + HOUR_US), sample_record("l2", 1, T0 + HOUR_US))  # publishes seq 0
    clock.t += 2
    w.maintain()  # seq 1 holds record 1 in a complete block
    w.write(part(ts=T0 + HOUR_US), sample_record("l2", 2, T0 + HOUR_US))
    _DiskFull.on = True
    clock.t += 2
    with pytest.raises(StorageError) as err:
        w.maintain()
    msg = str(err.value)
    assert part(ts=T0 + HOUR_US).bronze_file("b1", 1) in msg and "disk full" in msg
    assert "left for salvage" in msg
    _DiskFull.on = False
    # Its stream writes nothing more in this burst, space or not: a later file would follow the
    # lost record 2 as if nothing were missing.
    with pytest.raises(StorageError, match="stopped after a failed write"):
        w.write(part(ts=T0 + HOUR_US), sample_record("l2", 3, T0 + HOUR_US))
    assert w.close() == [part(ts=T0).bronze_file("b1", 0)]
    assert [r["last_update_id"] for r in read_avro(store, w.published[0])] == [1001]
    (temp,) = store.stray_temporaries()
    assert [r["last_update_id"] for r in readable_records(temp)] == [1003]
    # Closing cleanly afterwards must not remove the lock file: salvage reads the dead
    # writer's temporaries as abandoned (not as a live writer's) by that file.
    assert os.path.exists(store.lock_path("b1"))


def test_disk_full_while_publishing_reports_all_failures(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = BronzeWriter(store, "b1")
    w.write(part("diffs"), sample_record("diffs", 0))
    w.write(part("diffs", T0 + HOUR_US), sample_record("diffs", 1, T0 + HOUR_US))
    assert w.wait_uploaded(10)
    first = w.published[0]
    w.write(part("snapshots"), sample_record("snapshots", 0))
    real_publish = store.publish
    calls = []

    def full_publish(temp: str, rel: str) -> None:
        calls.append(rel)
        raise StorageError(f"cannot publish {temp} as {rel}: disk full (ENOSPC)")

    monkeypatch.setattr(store, "publish", full_publish)
    with pytest.raises(StorageError, match=r"2 bronze files failed") as err:
        w.close()
    assert len(calls) == 2  # tried every file before raising
    assert all(rel in str(err.value) for rel in calls)
    monkeypatch.setattr(store, "publish", real_publish)
    assert store.list_files("") == [first]  # the earlier file is untouched
    assert [r["last_update_id"] for r in read_avro(store, first)] == [1001]
    assert len(store.stray_temporaries()) == 2  # left for salvage


def test_encoded_records_appended_through_a_handle(store: Store) -> None:
    from orderbook_pipeline.core.avro_binary import L2Encoder

    enc = L2Encoder("binance-spot", "BTCUSDT", (5,), "b1")
    w = BronzeWriter(store, "b1", max_file_bytes=2_000)
    p = partition_for("l2", "binance-spot", "BTCUSDT", T0, 5)
    f = w.handle(p)
    handles = [f]  # the objects themselves: ids of freed objects get reused
    for i in range(40):
        if not f.live:  # published at the size bound: ask for the next file
            f = w.handle(p)
            handles.append(f)
        (data,) = enc.encode(
            T0 + i, T0 + i + 7, 10 + i, 10 + i, None, [2.0], [1.5], [3.0], [0.5], False, False
        )
        w.append(f, data)
    paths = w.close()
    assert len(handles) == len(paths) > 1
    recs = [
        r
        for path in sorted(paths, key=lambda p: int(p.rsplit("-", 1)[1][:-5]))
        for r in read_avro(store, path)
    ]
    assert [r["last_update_id"] for r in recs] == list(range(10, 50))
    assert recs[0]["levels"] == [
        {"side": "bid", "px": 2.0, "qty": 1.5},
        {"side": "ask", "px": 3.0, "qty": 0.5},
    ]
    assert w.records_written["l2"] == 40
    with pytest.raises(RuntimeError):
        w.append(f, data)
