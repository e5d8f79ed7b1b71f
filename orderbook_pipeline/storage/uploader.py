"""Publishing complete bronze files to a remote store from a thread of its own.

BronzeWriter runs on the capture's asyncio loop, the one that reads the websocket frames. A PUT to
S3 takes tens of milliseconds, and a throttled one seconds of back-off: done in line, it would
stall the frames (stale books, replaced connections). So on a remote store (Store.
publishes_remotely) the writer hands each complete file (closed in the local spool) to an
Uploader: one background thread publishes the files in the order they were queued, retrying a
transient failure with exponential back-off and jitter for as long as the writer is open.

At the end, finish() waits a bounded grace for the queue to empty. A file still queued then stays
complete in the spool, its burst lock kept (see bronze_writer), and the next burst's salvage
uploads it. A failure that is not transient (the spool file vanished, access denied) is not
retried: it is handed back to the writer, which raises it as a StorageError, as in line.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from orderbook_pipeline.storage.store import StorageError, Store, describe_os_error

log = logging.getLogger("orderbook_pipeline.storage")

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 15.0
LOG_FIRST = 5  # failed attempts logged at WARNING; the rest at DEBUG (all are counted)
# After the grace, how long finish() lets the thread notice the stop: immediate while it waits
# out a back-off; an attempt in flight is not waited for (the client's timeouts bound it).
EXIT_WAIT_S = 0.5

# S3 error codes worth retrying, besides any 5xx status (botocore's own list, plus SlowDown).
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether the same upload may succeed if tried again later: throttling, a 5xx answer, a
    dropped or refused connection, a timeout. Follows the __cause__ chain, since Store.publish
    wraps the client's error in a StorageError. Anything else (a missing spool file, access
    denied, a missing bucket) is for an operator, not for a retry."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if _transient_one(cur):
            return True
        cur, seen = cur.__cause__, seen + 1
    return False


def _transient_one(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)  # botocore ClientError, without importing it
    if isinstance(response, dict):
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        if str(error.get("Code", "")) in _TRANSIENT_CODES:
            return True
        return isinstance(status, int) and (status >= 500 or status == 429)
    try:
        from botocore.exceptions import (  # type: ignore[import-untyped]
            ConnectionError as BotoConnectionError,
        )
        from botocore.exceptions import HTTPClientError
    except ImportError:  # a store without botocore: only the builtin kinds below
        pass
    else:
        # Refused, reset, timed out, cut off mid-response (ReadTimeoutError is also an OSError,
        # so this comes before the OSError rule below).
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return True
    return isinstance(exc, ConnectionError | TimeoutError)


def backoff_s(attempts: int, base_s: float, cap_s: float, rng: Callable[[], float]) -> float:
    """Wait before retry number `attempts` (1, 2, ...): base doubling up to cap, jittered into
    [d/2, d) so that uploaders failing together do not retry together."""
    d = min(cap_s, base_s * 2.0 ** min(attempts - 1, 30))
    return d / 2 + rng() * d / 2


@dataclass(eq=False)
class Upload:
    """One complete local temporary to publish as `rel_path`."""

    temp_path: str
    rel_path: str
    size: int
    records: int
    attempts: int = 0
    synced: bool = False  # fsynced in the spool (done once, before the first attempt)


class Uploader:
    """One thread publishing queued files in order; see the module doc.

    `on_published(upload)` runs on the upload thread once the file is final, before the upload
    leaves the queue (so that `pending` never hides a file not yet reported). Counters are
    written by that thread alone; reading them from elsewhere is safe (ints).
    """

    def __init__(
        self,
        store: Store,
        on_published: Callable[[Upload], None],
        *,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        name: str = "bronze-upload",
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.on_published = on_published
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.name = name
        self._rng = rng
        self.retries = 0  # failed attempts that were retried (or would have been, at the end)
        self.failures = 0  # files given up on: a failure that is not transient
        self._cond = threading.Condition()
        self._queue: deque[Upload] = deque()  # [0] is the one being tried
        self._errors: list[StorageError] = []
        self._closing = False  # finish() called: exit once the queue is empty
        self._stop = False  # the grace is over: no new attempt
        self._thread: threading.Thread | None = None
        self._exited = False
        self._on_exit: Callable[[], None] | None = None

    # -- caller's side ----------------------------------------------------------------------

    def submit(self, upload: Upload) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError(f"uploader {self.name} is finishing: {upload.rel_path} refused")
            self._queue.append(upload)
            if self._thread is None:  # started on the first file: no idle thread per writer
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Files queued and not yet published (nor given up on)."""
        with self._cond:
            return len(self._queue)

    def take_errors(self) -> list[StorageError]:
        """The failures that were not retried, since the last call."""
        with self._cond:
            errors, self._errors = self._errors, []
        return errors

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until the queue is empty, at most `timeout_s`; True if it is."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def finish(self, grace_s: float, on_exit: Callable[[], None]) -> list[Upload]:
        """Refuse new files, wait at most `grace_s` for the queued ones, then stop retrying.

        Returns the files not published by then (left complete in the spool). `on_exit` runs
        exactly once when the thread no longer touches any file: here if it is gone by the
        return, else on the thread as it exits (an attempt still in flight may yet publish its
        file; the burst lock must outlive it).
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self.wait_idle(grace_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(EXIT_WAIT_S)
        with self._cond:
            left = list(self._queue)
            gone = self._thread is None or self._exited
            if not gone:
                self._on_exit = on_exit
        if gone:
            on_exit()
        return left

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.0
        try:
            while True:
                with self._cond:
                    upload = self._next(delay)
                if upload is None:
                    return
                delay = self._attempt(upload)
        finally:
            with self._cond:
                self._exited = True
                on_exit, self._on_exit = self._on_exit, None
                self._cond.notify_all()
            if on_exit is not None:
                on_exit()

    def _next(self, delay: float) -> Upload | None:
        """Under the lock: the next upload to try once `delay` has passed, or None to exit."""
        not_before = time.monotonic() + delay
        while not self._stop:
            if not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
                continue
            wait = not_before - time.monotonic()
            if wait <= 0:
                return self._queue[0]
            self._cond.wait(wait)  # a back-off; finish() cuts it short only at the deadline
        return None

    def _attempt(self, upload: Upload) -> float:
        """Try once; return the back-off before the next try (0 after a success)."""
        upload.attempts += 1
        try:
            if not upload.synced:
                _fsync(upload.temp_path)  # it may wait out an outage there: survive a power cut
                upload.synced = True
            self.store.publish(upload.temp_path, upload.rel_path)
        except Exception as exc:
            if is_transient(exc):
                return self._retry_later(upload, exc)
            self._give_up(upload, exc)
            return 0.0
        self.on_published(upload)
        with self._cond:
            self._queue.popleft()
            self._cond.notify_all()
        if upload.attempts > 1:
            log.info("uploaded %s after %d attempts", upload.rel_path, upload.attempts)
        return 0.0

    def _retry_later(self, upload: Upload, exc: BaseException) -> float:
        self.retries += 1
        delay = backoff_s(upload.attempts, self.backoff_base_s, self.backoff_cap_s, self._rng)
        level = logging.WARNING if self.retries <= LOG_FIRST else logging.DEBUG
        log.log(
            level,
            "upload of %s failed (attempt %d, %d retries so far), retrying in %.1f s: %s",
            upload.rel_path,
            upload.attempts,
            self.retries,
            delay,
            exc,
        )
        return delay

    def _give_up(self, upload: Upload, exc: BaseException) -> None:
        self.failures += 1
        error = exc if isinstance(exc, StorageError) else None
        if error is None:
            error = StorageError(
                f"cannot publish {upload.temp_path} as {upload.rel_path}: {describe_os_error(exc)}"
            )
            error.__cause__ = exc
        log.error("upload of %s failed, not retried (temporary left): %s", upload.rel_path, exc)
        with self._cond:
            self._queue.popleft()
            self._errors.append(error)
            self._cond.notify_all()


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot sync spool file {path}: {describe_os_error(exc)}") from exc
