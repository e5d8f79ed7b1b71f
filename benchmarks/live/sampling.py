"""/proc sampling: per-process CPU and memory, the machine's busy time, CPU over a window."""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the capture was started (monotonic)
    cpu_s: float  # utime + stime of every thread
    rss_kb: int
    hwm_kb: int


def read_proc(pid: int, t: float) -> Sample | None:
    """One /proc sample of pid, or None once it is gone (or a zombie without status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat.rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    kb = {
        k: int(v.split()[0])
        for k, _, v in (line.partition(":") for line in status.splitlines())
        if k in ("VmRSS", "VmHWM")
    }
    if "VmRSS" not in kb:  # zombie: no memory left to report
        return None
    return Sample(t, cpu_s, kb["VmRSS"], kb.get("VmHWM", 0))


def read_machine(t: float) -> Sample:
    """CPU time every process on the machine was busy (all cores), as a Sample: other
    engineers' jobs share these cores, and their load explains stalls that ours do not."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user..steal; guest time is already inside user
    return Sample(t, busy / _CLK_TCK, 0, 0)


def bracket(samples: Sequence[Sample], start: float, end: float) -> tuple[Sample, Sample] | None:
    """The last sample at/before start and the first at/after end.

    Samples are a second apart, so a window is widened to the samples bracketing it (by under
    a second each side) rather than narrowed to none for short windows."""
    if len(samples) < 2:
        return None
    times = [s.t for s in samples]
    i = max(0, bisect.bisect_right(times, start) - 1)
    j = min(len(samples) - 1, bisect.bisect_left(times, end))
    if samples[j].t - samples[i].t <= 0:
        return None
    return samples[i], samples[j]


def cpu_percent(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """CPU % of one core over [start, end] (widened to the bracketing samples)."""
    pair = bracket(samples, start, end)
    if pair is None:
        return None
    a, z = pair
    return 100.0 * (z.cpu_s - a.cpu_s) / (z.t - a.t)
