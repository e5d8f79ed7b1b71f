"""The lake seen from outside: bronze landings, silver states, and the lags between them."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.pipeline.settings import spread
from orderbook_pipeline.storage.layout import partition_of


@dataclass(frozen=True)
class StateSnapshot:
    at: float  # wall seconds: the state file's mtime
    path: str  # the state's path under OBP_HOME
    cut_us: int
    files: Mapping[str, int]  # bronze path -> its largest partition time (µs)


def record_consumption(
    consumed: dict[str, float], file_max: dict[str, int], snap: StateSnapshot
) -> int:
    """Files the state holds whole (largest time below its cut) get their first such time;
    returns how many were new. `file_max` keeps each file's largest time as last recorded."""
    new = 0
    for path, last in snap.files.items():
        file_max[path] = last
        if last < snap.cut_us and path not in consumed:
            consumed[path] = snap.at
            new += 1
    return new


def _scan_dirs(root: Path, cache: dict[str, tuple[int, list[str], list[str]]]) -> Iterator[str]:
    """Paths of every file under root; a directory is listed again only when its mtime
    changed (a file published by rename changes it), so a scan costs one stat a directory."""
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            mtime = os.stat(directory).st_mtime_ns
        except FileNotFoundError:
            continue
        cached = cache.get(directory)
        if cached is None or cached[0] != mtime:
            dirs: list[str] = []
            files: list[str] = []
            with contextlib.suppress(FileNotFoundError), os.scandir(directory) as it:
                for e in it:
                    (dirs if e.is_dir(follow_symlinks=False) else files).append(e.path)
            cached = cache[directory] = (mtime, dirs, files)
        stack.extend(cached[1])
        yield from cached[2]


class LakeWatcher:
    """Bronze landings and silver states, every lake_s, cheaply (no data file is read)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.landings: dict[str, float] = {}  # bronze path -> mtime
        self.consumed: dict[str, float] = {}  # bronze path -> first state holding it whole
        self.file_max: dict[str, int] = {}
        self.state_mtimes: dict[str, float] = {}
        self.state_log: list[tuple[float, str, int, int]] = []  # (mtime, path, cut_us, files)
        self._bronze_dirs: dict[str, tuple[int, list[str], list[str]]] = {}
        self._silver_dirs: dict[str, tuple[int, list[str], list[str]]] = {}

    def scan(self) -> None:
        prefix = len(str(self.home)) + 1
        for path in _scan_dirs(self.home / "bronze", self._bronze_dirs):
            rel = path[prefix:]
            if rel in self.landings or not path.endswith(".avro") or "/." in rel:
                continue  # known, or a temporary (".name.tmp-...")
            with contextlib.suppress(FileNotFoundError):
                self.landings[rel] = os.stat(path).st_mtime
        for path in _scan_dirs(self.home / "silver", self._silver_dirs):
            if not path.endswith("/_parts.json"):
                continue
            # Stat every state each scan: one rewritten in place would not touch its directory.
            try:
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            rel = path[prefix:]
            if self.state_mtimes.get(rel) == mtime:
                continue
            try:
                body = json.loads(Path(path).read_bytes())
            except (OSError, ValueError):
                continue  # being replaced: the next scan reads it
            self.state_mtimes[rel] = mtime
            files = {str(k): int(v) for k, v in body.get("files", {}).items()}
            snap = StateSnapshot(mtime, rel, int(body["cut_us"]), files)
            record_consumption(self.consumed, self.file_max, snap)
            self.state_log.append((mtime, rel, snap.cut_us, len(files)))


def hour_end_of(rel_path: str) -> float | None:
    part = partition_of(rel_path)
    return None if part is None else part.hour_start_us / 1e6 + 3600


@dataclass(frozen=True)
class LagSet:
    """Landing-to-done lags of bronze files, censored at the end of the observation."""

    lags: list[float]  # done files, plus files not done after `horizon` (their age: a floor)
    done: int
    pending_over: int  # not done, landed more than `horizon` before the end
    unjudged: int  # landed within `horizon` of the end: their lag could not be seen that far
    oldest_pending_s: float | None

    def figures(self) -> dict[str, Any]:
        return {
            **spread(self.lags),
            "done": self.done,
            "pending_over_horizon": self.pending_over,
            "unjudged_recent": self.unjudged,
            "oldest_pending_s": self.oldest_pending_s,
        }


def landing_lags(
    landings: Mapping[str, float], done_at: Mapping[str, float], end: float, horizon: float
) -> LagSet:
    """Why censor: a file that landed shortly before the end has had no chance to be done, and
    keeping only the recent ones that were done would flatter the figure. Files older than the
    horizon are all judged: done (lag known) or not (lag at least their age)."""
    lags: list[float] = []
    done = pending = unjudged = 0
    oldest: float | None = None
    for path, landed in landings.items():
        at = done_at.get(path)
        if landed > end - horizon:
            unjudged += 1
            continue
        if at is not None and at <= end:
            lags.append(max(0.0, at - landed))
            done += 1
        else:
            age = end - landed
            lags.append(age)
            pending += 1
            oldest = age if oldest is None else max(oldest, age)
    return LagSet(lags, done, pending, unjudged, oldest)


def covered_at(max_us: int, judged: Sequence[tuple[float, int]]) -> float | None:
    """The first time (of `judged`: (event time, judged_until µs), in time order) a refresh
    judged past `max_us`: the file's every row is then in the derived data."""
    for at, until_us in judged:
        if max_us < until_us:
            return at
    return None
