"""S3 that fails: a proxy of the test's own in front of the moto server answers some PUTs with
503 Slow Down and cuts others off mid-request. Every object is published once, complete."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import fastavro
import pytest

from orderbook_pipeline.storage import bronze_writer
from orderbook_pipeline.storage.layout import TEMP_MARK
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.venues import BINANCE_SPOT
from orderbook_pipeline_tests.capture.conftest import capture
from orderbook_pipeline_tests.capture.truth import verify_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SLOW_DOWN = b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FailingProxy:
    """TCP relay to `upstream`; the first `slow_down` PUTs are answered 503, the next `resets`
    are cut off (RST) after their first bytes were forwarded."""

    def __init__(self, upstream: str, slow_down: int, resets: int) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.slow_down, self.resets = slow_down, resets
        self.answered_503 = self.cut_off = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _fault_for(self, chunk: bytes) -> str | None:
        if not chunk.startswith(b"PUT "):
            return None
        with self._lock:
            if self.answered_503 < self.slow_down:
                self.answered_503 += 1
                return "503"
            if self.cut_off < self.resets:
                self.cut_off += 1
                return "reset"
        return None

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                fault = self._fault_for(chunk)
                if fault == "503":
                    client.sendall(SLOW_DOWN)
                    break
                if fault == "reset":
                    upstream.sendall(chunk[: len(chunk) // 2])
                    # SO_LINGER 0: close with RST, as a dropped connection looks to the client.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                upstream.sendall(chunk)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


@pytest.fixture
def failing_s3(s3_endpoint: str) -> Iterator[FailingProxy]:
    proxy = FailingProxy(s3_endpoint, slow_down=3, resets=2)
    yield proxy
    proxy.close()


def test_slow_downs_and_cut_off_puts_are_retried_and_every_object_lands_once(
    simulator, s3_root, s3_endpoint, failing_s3, private_temp_dir
):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    summary = capture(
        sim,
        s3_root,
        BINANCE_SPOT,
        SYMBOLS,
        duration_s=4.0,
        lanes=("l2", "diffs"),
        s3_endpoint_url=failing_s3.url,
        max_file_seconds=0.5,
    )
    assert (failing_s3.answered_503, failing_s3.cut_off) == (3, 2), "the faults happened"
    assert summary["upload_retries"] >= 1 and summary["files_left_for_salvage"] == 0
    store = open_store(s3_root, s3_endpoint_url=s3_endpoint)  # read behind the proxy's back
    keys = store.list_files("bronze/")
    assert len(keys) == summary["files"] > 0  # each published file is one object
    for key in keys:  # complete: a cut-off PUT never left a partial object
        records = list(fastavro.reader(io.BytesIO(store.read_bytes(key))))
        assert records
    # Exact books and no record twice (verify_capture's rules), nothing left in the spool.
    verify_capture(sim, store, BINANCE_SPOT, SYMBOLS, (5, 20))
    assert not list(Path(private_temp_dir).rglob(f"*{TEMP_MARK}*"))


def _upload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bronze-upload-")]


def test_s3_down_for_the_whole_burst_ends_on_time_and_the_next_burst_uploads_the_files(
    simulator, s3_root, s3_endpoint, private_temp_dir, monkeypatch
):
    sim = simulator(BINANCE_SPOT, SYMBOLS)
    monkeypatch.setattr(bronze_writer, "UPLOAD_GRACE_S", 1.0)
    down = FailingProxy(s3_endpoint, slow_down=10**9, resets=0)  # every PUT: 503
    try:
        started = time.monotonic()
        summary = capture(
            sim,
            s3_root,
            BINANCE_SPOT,
            SYMBOLS,
            duration_s=2.0,
            lanes=("l2", "diffs"),
            s3_endpoint_url=down.url,
            max_file_seconds=0.5,
        )
        # Not an error: the files are safe in the spool. The burst ends after its grace.
        assert time.monotonic() - started < 2.0 + 1.0 + 5.0
        assert summary["files"] == 0 and summary["upload_retries"] >= 1
        left = summary["files_left_for_salvage"]
        assert left > 0 and len(list(Path(private_temp_dir).rglob(f"*{TEMP_MARK}*"))) == left
        deadline = time.monotonic() + 30  # an attempt in flight keeps the burst lock till it ends
        while _upload_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _upload_threads()
        down.slow_down = down.answered_503  # S3 is back (same endpoint: the spool is per endpoint)
        again = capture(
            sim, s3_root, BINANCE_SPOT, SYMBOLS, duration_s=1.5, s3_endpoint_url=down.url
        )
    finally:
        down.close()
    assert again["salvaged"]["files"] == left and again["files_left_for_salvage"] == 0
    assert not list(Path(private_temp_dir).rglob(f"*{TEMP_MARK}*"))
    store = open_store(s3_root, s3_endpoint_url=s3_endpoint)
    verify_capture(sim, store, BINANCE_SPOT, SYMBOLS, (5, 20))
