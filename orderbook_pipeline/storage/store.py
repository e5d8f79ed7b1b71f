"""Where bytes live: a local folder or an S3 prefix, behind one small interface.

Every file becomes visible under its final name only once complete (design.md, "Storage
layout"): writers produce a LOCAL temporary (`temp_path_for`) and then `publish` it. Locally that
is a rename in the same directory; on S3 the temporary sits in a local spool directory and is
uploaded with one PUT. The spool is private to the user (`private_dir`): salvage uploads what it
finds there. Paths given to a store are relative to its root, '/'-separated.

Listing, reading and stat-ing final files go through one `pyarrow.fs` filesystem for both
backends (LocalFileSystem, S3FileSystem); publishing and S3 deletes do not (see s3_store.py; roots.py opens the store a data root names).
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import secrets
import stat
import tempfile
from typing import TYPE_CHECKING

from orderbook_pipeline.storage.layout import (
    final_basename_of_temp,
    is_final,
    is_temporary,
    temp_basename,
)

if TYPE_CHECKING:  # pyarrow.fs loads on first listing: a capture only writes (~40 MB RSS)
    import pyarrow.fs as pafs

DEFAULT_ROOT = "./data"
LOCK_DIR = ".locks"  # burst liveness locks (see bronze_writer.BurstLock); never a final file
SPOOL_NAME = "orderbook-spool"


class StorageError(Exception):
    """A storage operation failed; the message names the path and the cause."""


def describe_os_error(exc: BaseException) -> str:
    """Human cause of an OSError, spelling out the ones operators must act on."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full (ENOSPC: {exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
        return f"disk quota exceeded (EDQUOT: {exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} (errno {exc.errno})"
    return f"{type(exc).__name__}: {exc}"


def private_dir(path: str, *, create: bool = True) -> str:
    """`path`, checked to be a directory only we can use: created with mode 0700 if missing
    (with create), else it must be a real directory (no symlink) owned by us with no group or
    other permission bits. StorageError names the path and what is wrong.

    Salvage uploads what it finds in the S3 spool, so nobody else may be able to put files there.
    Someone else's directory is refused, never chmod-ed.
    """
    if create:
        try:
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)  # ours, just made: whatever the umask left, exactly 0700
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(
                f"cannot create private directory {path}: {describe_os_error(exc)}"
            ) from exc
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise StorageError(f"cannot use directory {path}: {describe_os_error(exc)}") from exc
    uid = os.getuid()
    if stat.S_ISLNK(st.st_mode):
        problem = "it is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "it is not a directory"
    elif st.st_uid != uid:
        problem = f"owned by uid {st.st_uid}, not {uid}"
    elif st.st_mode & 0o077:
        problem = f"mode {stat.S_IMODE(st.st_mode):04o}, must be 0700 (no group or other access)"
    else:
        return path
    raise StorageError(f"refusing directory {path}: {problem}")


def default_spool_base() -> str:
    """Per-user private base of the S3 spools: <tmp>/orderbook-spool-<uid>. Not
    $XDG_RUNTIME_DIR: that is a small tmpfs removed at logout, and a killed burst's spool must
    survive until the next burst salvages it."""
    return os.path.join(tempfile.gettempdir(), f"{SPOOL_NAME}-{os.getuid()}")


def check_rel(rel_path: str) -> str:
    # Relative paths come from layout.py; refuse anything that could escape the root.
    parts = rel_path.split("/")
    if not rel_path or rel_path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid relative storage path: {rel_path!r}")
    return rel_path


def new_temp_path(directory: str, rel_path: str) -> str:
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, temp_basename(rel_path.rsplit("/", 1)[-1], secrets.token_hex(6)))


def _walk_temporaries(base: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != LOCK_DIR)
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if is_temporary(f)]
    return found


def _fsync_path(path: str, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _visible(rel_path: str) -> bool:
    """A final file a reader may see: no hidden component (temporaries, .locks and the like)."""
    return is_final(rel_path) and not any(p.startswith(".") for p in rel_path.split("/"))


def _prefix_dir(prefix: str) -> str:
    """The deepest directory a string prefix names ('a/b/c' -> 'a/b'; 'a' -> '')."""
    return prefix.rsplit("/", 1)[0] if "/" in prefix else ""


class Store(abc.ABC):
    """Folder-like storage of final files plus local temporaries that are published atomically.

    Listing, reading and stat-ing go through a `pyarrow.fs` filesystem, the same code for a local
    folder and for S3 (`filesystem` and `fs_path` let other readers of the lake share it).
    Publishing stays backend-specific: a rename locally, one PUT on S3.
    """

    root: str
    # True when publish() goes over the network (S3): tens of ms per file, seconds when the
    # service throttles. BronzeWriter then publishes from a thread of its own (uploader.py),
    # never on its caller's (the capture's event loop). A local publish is a rename: in line.
    publishes_remotely: bool = False

    @property
    @abc.abstractmethod
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem holding the final files, at paths `fs_path` gives."""

    @property
    @abc.abstractmethod
    def fs_base(self) -> str:
        """Path of the root inside `filesystem` (a local directory, or bucket/prefix)."""

    def fs_path(self, rel_path: str) -> str:
        """Path of a final file inside `filesystem`."""
        return self._join(check_rel(rel_path))

    def _join(self, rel_path: str) -> str:
        return f"{self.fs_base}/{rel_path}" if rel_path else self.fs_base

    def _rel(self, fs_path: str) -> str:
        return fs_path[len(self.fs_base) :].lstrip("/")

    @abc.abstractmethod
    def temp_path_for(self, rel_path: str) -> str:
        """A new LOCAL path where the temporary for final `rel_path` can be written."""

    @abc.abstractmethod
    def publish(self, temp_path: str, rel_path: str, durable: bool = True) -> None:
        """Make the complete temporary visible as `rel_path`, atomically; consumes the temp.
        `durable`: also on disk before returning (fsync); derived files (silver) skip it, as a
        lost one is noticed and rebuilt from bronze."""

    @abc.abstractmethod
    def delete(self, rel_path: str) -> None:
        """Remove a final file; no error if it is already gone."""

    @abc.abstractmethod
    def uri(self, rel_path: str) -> str:
        """Absolute local path or s3:// URI of a final file."""

    @abc.abstractmethod
    def local_base(self) -> str:
        """Local directory holding this store's temporaries (root, or the S3 spool)."""

    def _root_missing(self) -> str | None:
        """Why the root itself is unusable (an S3 bucket that does not exist), else None.
        pyarrow answers "not found" for a missing bucket as for a missing key, where a wrong
        bucket name must be an error, not an empty lake."""
        return None

    def read_bytes(self, rel_path: str) -> bytes:
        """Content of a final file; FileNotFoundError if it does not exist."""
        path = self.fs_path(rel_path)
        try:
            # compression=None: bytes as stored, never guessed from the name (".gz" and such).
            with self.filesystem.open_input_stream(path, compression=None) as fh:
                return bytes(fh.readall())
        except FileNotFoundError:
            if why := self._root_missing():
                raise StorageError(f"cannot read {self.uri(rel_path)}: {why}") from None
            raise FileNotFoundError(errno.ENOENT, "no such file", self.uri(rel_path)) from None
        except OSError as exc:
            raise StorageError(
                f"cannot read {self.uri(rel_path)}: {describe_os_error(exc)}"
            ) from exc

    def exists(self, rel_path: str) -> bool:
        import pyarrow.fs as pafs

        try:
            info = self.filesystem.get_file_info(self.fs_path(rel_path))
        except OSError as exc:
            raise StorageError(
                f"cannot stat {self.uri(rel_path)}: {describe_os_error(exc)}"
            ) from exc
        return bool(info.type == pafs.FileType.File)

    def _list_dir(self, rel_dir: str, *, recursive: bool) -> list[pafs.FileInfo]:
        import pyarrow.fs as pafs

        base = self._join(check_rel(rel_dir)) if rel_dir else self.fs_base
        selector = pafs.FileSelector(base, allow_not_found=True, recursive=recursive)
        where = f"{self.root}/{rel_dir}" if rel_dir else self.root
        try:
            infos = list(self.filesystem.get_file_info(selector))
        except NotADirectoryError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot list {where}: {describe_os_error(exc)}") from exc
        if not infos and (why := self._root_missing()):
            raise StorageError(f"cannot list {where}: {why}")
        return infos

    def list_files(self, prefix: str, suffix: str | None = None) -> list[str]:
        """Sorted relative paths of FINAL files starting with `prefix` (temporaries never)."""
        # List only the deepest directory the prefix names (on S3 one paged, flat listing),
        # then filter by string prefix.
        import pyarrow.fs as pafs

        out = []
        for info in self._list_dir(_prefix_dir(prefix), recursive=True):
            rel = self._rel(info.path)
            is_file = info.type == pafs.FileType.File
            if is_file and rel.startswith(prefix) and rel.endswith(suffix or "") and _visible(rel):
                out.append(rel)
        return sorted(out)

    def first_file(self, prefix: str) -> str | None:
        """The lexicographically first final file under `prefix`, or None.

        Partition paths (dt=YYYY-MM-DD/hour=HH) sort chronologically, so this is the oldest
        file of a stream. Answered without listing everything: a sorted depth-first walk, one
        directory listing per level, however long the stream's history.
        """
        return self._first_in(_prefix_dir(prefix), prefix)

    def _first_in(self, rel_dir: str, prefix: str) -> str | None:
        import pyarrow.fs as pafs

        infos = self._list_dir(rel_dir, recursive=False)
        # A directory sorts as its name plus "/", as the paths beneath it do.
        dirs = {i.path for i in infos if i.type == pafs.FileType.Directory}
        for path in sorted((i.path for i in infos), key=lambda p: p + "/" if p in dirs else p):
            rel = self._rel(path)
            if rel.rsplit("/", 1)[-1].startswith("."):
                continue
            if path in dirs:
                found = self._first_in(rel, prefix) if (rel + "/").startswith(prefix) else None
                if found is not None:
                    return found
            elif rel.startswith(prefix) and _visible(rel):
                return rel
        return None

    def write_bytes(self, rel_path: str, data: bytes, durable: bool = True) -> None:
        temp = self.temp_path_for(rel_path)
        try:
            with open(temp, "wb") as fh:
                fh.write(data)
            self.publish(temp, rel_path, durable)
        except (OSError, StorageError) as exc:
            # Arbitrary bytes cannot be salvaged (only bronze Avro can): drop the temporary.
            with contextlib.suppress(OSError):
                os.remove(temp)
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"cannot write {temp}: {describe_os_error(exc)}") from exc

    def stray_temporaries(self) -> list[str]:
        """Local paths of all temporaries left under local_base (by live or dead writers)."""
        return _walk_temporaries(self.local_base())

    def final_path_for_temp(self, temp_path: str) -> str:
        """Relative final path a temporary was going to be published as."""
        rel_dir = os.path.relpath(os.path.dirname(os.path.abspath(temp_path)), self.local_base())
        name = final_basename_of_temp(temp_path)
        return name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"

    def lock_path(self, burst_id: str) -> str:
        """Local lock file that a live writer of `burst_id` holds (see BurstLock)."""
        return os.path.join(self.local_base(), LOCK_DIR, f"{burst_id}.lock")


class LocalStore(Store):
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)
        self._filesystem: pafs.FileSystem | None = None

    @property
    def filesystem(self) -> pafs.FileSystem:
        if self._filesystem is None:
            import pyarrow.fs as pafs

            self._filesystem = pafs.LocalFileSystem()
        return self._filesystem

    @property
    def fs_base(self) -> str:
        return self.root.rstrip("/")

    def _abs(self, rel_path: str) -> str:
        return os.path.join(self.root, *check_rel(rel_path).split("/"))

    def local_base(self) -> str:
        return self.root

    def temp_path_for(self, rel_path: str) -> str:
        # Same directory as the final file, so os.replace is an atomic rename on one filesystem.
        final = self._abs(rel_path)
        try:
            return new_temp_path(os.path.dirname(final), rel_path)
        except OSError as exc:
            raise StorageError(
                f"cannot create directory for {final}: {describe_os_error(exc)}"
            ) from exc

    def publish(self, temp_path: str, rel_path: str, durable: bool = True) -> None:
        final = self._abs(rel_path)
        try:
            if durable:
                _fsync_path(temp_path)  # data durable before the name points at it
            os.replace(temp_path, final)
            if durable:
                _fsync_path(os.path.dirname(final), directory=True)  # the rename itself too
        except OSError as exc:
            raise StorageError(
                f"cannot publish {temp_path} as {final}: {describe_os_error(exc)}"
            ) from exc

    def delete(self, rel_path: str) -> None:
        path = self._abs(rel_path)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {describe_os_error(exc)}") from exc

    def uri(self, rel_path: str) -> str:
        return self._abs(rel_path)
