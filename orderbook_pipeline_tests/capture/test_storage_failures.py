"""Storage trouble during a burst: a full disk stops it cleanly with a clear error and loses
nothing already captured; a data root on S3 (moto on loopback) gets the same exact data."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import fastavro
import pytest

from orderbook_pipeline.capture.burst import CaptureError
from orderbook_pipeline.capture.symbol import SymbolCapture
from orderbook_pipeline.storage.bronze_writer import BronzeWriter
from orderbook_pipeline.storage.layout import TEMP_MARK
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import StorageError
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM

from .conftest import capture
from .truth import verify_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTHS = (5, 20)


def test_full_disk_stops_the_burst_and_keeps_what_was_captured(simulator, tmp_path, monkeypatch):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    root = tmp_path / "data"
    disk_full = threading.Event()
    real_dump = BronzeWriter._dump

    blocks: dict[str, int] = {}  # complete blocks each file (by temporary) got onto the disk

    def dump(self, f):  # the writer's real failure path, as if write(2) said ENOSPC
        # The disk fills up between two blocks of a file, so however slowly this machine runs,
        # the file that fails holds a complete block for the next burst to salvage.
        if disk_full.is_set() and blocks.get(f.temp_path, 0) and f.block_records:
            self._fail(f, OSError(errno.ENOSPC, "No space left on device"))
        if f.block_records:
            blocks[f.temp_path] = blocks.get(f.temp_path, 0) + 1
        return real_dump(self, f)

    monkeypatch.setattr(BronzeWriter, "_dump", dump)
    timer = threading.Timer(2.0, disk_full.set)
    timer.start()
    with pytest.raises(CaptureError, match="disk full"):
        capture(
            sim,
            str(root),
            BINANCE_SPOT,
            SYMBOLS,
            duration_s=8.0,
            max_file_seconds=0.6,
            flush_interval_s=0.15,
        )
    timer.cancel()

    finals = sorted(root.rglob("*.avro"))
    assert finals, "files completed before the disk filled stay published"
    for path in finals:
        with path.open("rb") as fo:
            assert list(fastavro.reader(fo))
    assert [p for p in root.rglob("*") if TEMP_MARK in p.name], "unfinished files left to salvage"

    disk_full.clear()  # space freed: the next burst salvages the leftovers
    summary = capture(sim, str(root), BINANCE_SPOT, SYMBOLS, duration_s=1.5)
    assert summary["salvaged"]["files"] >= 1
    assert not [p for p in root.rglob("*") if TEMP_MARK in p.name]
    verify_capture(sim, open_store(str(root)), BINANCE_SPOT, SYMBOLS, DEPTHS)


def test_a_storage_error_while_finishing_still_publishes_what_is_complete(
    simulator, tmp_path, monkeypatch
):
    """The records written at the burst's end (capture/verification.py, finish) may fail on a
    full disk: the burst still closes its files, and says what failed."""
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    root = tmp_path / "data"

    def finish(self: SymbolCapture) -> None:
        raise StorageError(f"disk full while finishing {self.symbol}")

    monkeypatch.setattr(SymbolCapture, "finish", finish)
    with pytest.raises(CaptureError, match="disk full while finishing BTCUSDT"):
        capture(sim, str(root), BINANCE_SPOT, SYMBOLS, duration_s=1.5)
    assert sorted(root.rglob("*.avro")), "every file was closed and published"
    assert not [p for p in root.rglob("*") if TEMP_MARK in p.name]
    verify_capture(sim, open_store(str(root)), BINANCE_SPOT, SYMBOLS, DEPTHS)


def test_capture_into_s3(simulator, s3_root, s3_endpoint, tmp_path, private_temp_dir):
    sim = simulator(BINANCE_USDM, SYMBOLS)
    summary = capture(
        sim,
        s3_root,
        BINANCE_USDM,
        SYMBOLS,
        duration_s=2.5,
        s3_endpoint_url=s3_endpoint,
        max_file_seconds=1.0,
    )
    store = open_store(s3_root, s3_endpoint_url=s3_endpoint)
    keys = store.list_files("bronze/")
    assert len(keys) == summary["files"] > 0
    assert any(k.startswith("bronze/snapshots/market=binance-usdm/symbol=BTCUSDT/") for k in keys)
    assert all(k.endswith(".avro") for k in keys)
    seen = verify_capture(sim, store, BINANCE_USDM, SYMBOLS, DEPTHS)
    assert seen.gaps_flagged == {"BTCUSDT": 0, "ETHUSDT": 0}
    assert not list(Path(tmp_path).rglob(f"*{TEMP_MARK}*")), "spool emptied after publishing"
