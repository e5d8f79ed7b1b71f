"""py-spy: finding it, and parsing its raw (collapsed stacks) profile."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.live.settings import ROOT


@dataclass(frozen=True)
class ProfileTop:
    samples: int  # non-idle samples (py-spy drops those of threads waiting in epoll)
    window: tuple[float, float]  # seconds since the capture started
    rate: int
    own: list[tuple[str, int]]  # function, samples where it was the leaf
    inclusive: list[tuple[str, int]]  # project function, samples where it was on the stack
    packages: list[tuple[str, int]]  # own samples by package (asyncio, websockets, ...)
    cpu_percent: float | None  # py-spy's own CPU while it sampled


_FRAME_RE = re.compile(r"(.*) \((.*):(\d+)\)$")
# Where a file's importable path starts: after site-packages, the checkout, or the stdlib dir.
_PATH_ROOT_RE = re.compile(r".*(?:site-packages/|/lib/python3\.\d+/)")


def _short_frame(frame: str) -> str:
    """ "func (/venv/lib/python3.11/site-packages/pkg/mod.py:12)" -> "func (pkg/mod.py:12)"."""
    m = _FRAME_RE.match(frame)
    if not m:
        return frame
    name, path, line = m.groups()
    if path.startswith(str(ROOT) + "/"):
        path = path[len(str(ROOT)) + 1 :]
    else:
        path = _PATH_ROOT_RE.sub("", path, count=1)
    return f"{name} ({path}:{line})"


def _package(frame: str) -> str:
    m = _FRAME_RE.match(frame)
    if not m:
        return frame
    path = m.group(2)
    if path.startswith("orderbook_pipeline/"):  # the project's own modules, one by one
        return path.rsplit(".", 1)[0]
    return path.split("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]


def parse_raw_profile(text: str, top: int = 15) -> ProfileCounts:
    """py-spy `--format raw` (collapsed stacks, one "frame;frame;... count" a line)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for f in set(frames):  # recursion must not count a sample twice
            inclusive[f] += n
    packages: Counter[str] = Counter()
    for frame, n in own.items():
        packages[_package(frame)] += n
    project = Counter({f: n for f, n in inclusive.items() if "(orderbook_pipeline/" in f})
    return ProfileCounts(
        total, own.most_common(top), project.most_common(top), packages.most_common(top)
    )


@dataclass(frozen=True)
class ProfileCounts:
    samples: int
    own: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]  # the project's functions only: the rest is the loop
    packages: list[tuple[str, int]]


def _pyspy() -> str:
    """The py-spy next to this interpreter (a venv that is not activated), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    return found
