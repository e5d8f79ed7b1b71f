"""What the capture needs from the outside, as small protocols every side imports.

The symbol, its verifier and its stream lanes write through a RecordWriter (BronzeWriter in a
burst, a list in tests); the snapshot workers and periodic tasks ask the exchange through
SnapshotFetcher and ServerClock (RestClient). Kept in a module of its own that imports none of
theirs, so no two capture modules need each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from orderbook_pipeline.capture.rest import SnapshotResponse
    from orderbook_pipeline.storage.layout import Partition


class OpenFile(Protocol):
    """A bronze file open for appending (BronzeWriter.handle); replaced once not `live`."""

    live: bool
    partition: Partition


FileT = TypeVar("FileT", bound=OpenFile)


class RecordWriter(Protocol[FileT]):
    """Appends records to bronze files. The file handle is the writer's own type: the capture
    only hands back what `handle` gave it."""

    def write(self, partition: Partition, record: dict[str, Any]) -> None: ...

    def handle(self, partition: Partition) -> FileT: ...

    def append(self, f: FileT, data: bytes) -> None: ...


# Any writer, whatever its handle type (what the capture's classes hold).
AnyRecordWriter = RecordWriter[Any]

# Called with the StorageError that means the burst must stop (so that what is complete gets
# published): the burst's, given to whoever writes.
StorageFailureHandler = Callable[[BaseException], None]

# Called right before a request leaves, once the weight budget allows it.
BeforeSend = Callable[[], None]


class SnapshotFetcher(Protocol):
    """A depth snapshot from the exchange's REST API (RestClient.depth)."""

    async def depth(
        self, symbol: str, limit: int, before_send: BeforeSend | None = None
    ) -> SnapshotResponse: ...


class ServerClock(Protocol):
    """The exchange's clock from its REST API (RestClient.server_time_ms)."""

    async def server_time_ms(self, before_send: BeforeSend | None = None) -> int: ...
