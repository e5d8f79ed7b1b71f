"""Per-lane cost of the non-depth stream lanes: CPU µs per frame, reference path vs fast path.

    python -m benchmarks.lanes [--steps 600] [--rounds 5] [--lanes-only LANE]

Each frame goes through the capture's own router (capture/routing.py on_lane_frame), stream
lanes and book verifier into an in-memory writer (benchmarks/lane_frames.py): decoding,
checks, encoding, the top-of-book comparison and the append. The book is in sync and fed the
depth frames between (untimed), so bookTicker and partial depth are compared with it. Both
paths run in the same process, interleaved round by round, on the simulator's frames (spot
and USD-M, partial depth 10 levels) and the real recordings' bookTicker/trade/aggTrade frames.
Only thread CPU time around each lane frame is counted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections import defaultdict

from benchmarks.lane_frames import (
    REAL,
    REAL_DATASETS,
    LaneHarness,
    real_frames,
    real_symbols,
    simulated_frames,
    stream_lane,
)
from orderbook_pipeline.core.implementation import PYTHON, CompiledCoreMissing, Core, compiled
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM, Venue

_clock = time.thread_time_ns
# (name, fast path, core): today's path (the pure-Python core), the fast path on the
# pure-Python core, and (where built) on the compiled core (C book and encoders).
PATHS: list[tuple[str, bool, Core]] = [("reference", False, PYTHON), ("fast, Python", True, PYTHON)]
with contextlib.suppress(CompiledCoreMissing):
    PATHS.append(("fast, compiled", True, compiled()))


def _simulated(venue: Venue, steps: int) -> tuple[dict, list[tuple[str, int, str | None]]]:
    frames = simulated_frames(venue, "BTCUSDT", steps)
    snapshot = next(frames)
    out = []
    for frame, us in frames:
        kind = stream_lane(json.loads(frame)["stream"])
        out.append((frame, us, None if kind is None else kind[1]))
    return snapshot, out


def _run_simulated(
    venue: Venue, snapshot: dict, frames: list, fast: bool, core: Core
) -> dict[str, list[int]]:
    h = LaneHarness(venue, ["BTCUSDT"], fast, count=False, core=core)
    spent: dict[str, list[int]] = defaultdict(list)
    synced = False
    lane_frame, depth_frame = h.lane_frame, h.depth_frame
    for frame, us, lane in frames:
        stream = frame[11 : frame.index('"', 11)]
        if lane is None:
            h.route(stream, "BTCUSDT", "depth", None)
            depth_frame(frame, us)
            if not synced:
                h.snapshot("BTCUSDT", snapshot, us)
                synced = True
            continue
        kind = stream_lane(stream)
        assert kind is not None
        h.route(stream, "BTCUSDT", lane, kind[2])
        t0 = _clock()
        lane_frame(frame, us)
        spent[lane].append(_clock() - t0)
    return spent


def _run_real(
    dataset: str, frames: list, symbols: list[str], fast: bool, core: Core
) -> dict[str, list[int]]:
    h = LaneHarness(REAL_DATASETS[dataset], symbols, fast, count=False, core=core)
    spent: dict[str, list[int]] = defaultdict(list)
    for frame, us in frames:
        stream = frame[11 : frame.index('"', 11)]
        kind = stream_lane(stream)
        assert kind is not None
        h.route(stream, kind[0], kind[1], kind[2])
        t0 = _clock()
        h.lane_frame(frame, us)
        spent[kind[1]].append(_clock() - t0)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lanes")
    parser.add_argument("--steps", type=int, default=600, help="simulated market steps")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--real-frames", type=int, default=3000, help="per recording")
    args = parser.parse_args(argv)
    cases: list[tuple[str, object]] = []
    for venue in (BINANCE_SPOT, BINANCE_USDM):
        snap, frames = _simulated(venue, args.steps)
        cases.append((f"sim {venue.name}", (venue, snap, frames)))
    if REAL.is_dir():
        for ds in (
            "hb_spot_BTCUSDT_20240808",
            "hb_usdm_BTCUSDT_20240808",
            "cf_spot_10sym_20210405",
        ):
            if (REAL / ds).is_dir():
                fr = real_frames(ds, args.real_frames)
                cases.append((f"real {ds}", (ds, fr, real_symbols(fr))))
    else:
        print(f"(real recordings skipped: {REAL} is missing)")
    # case -> lane -> path -> per-round mean ns
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for _ in range(args.rounds):
        for name, case in cases:
            for path, fast, core in PATHS:
                if name.startswith("sim"):
                    venue, snap, frames = case  # type: ignore[misc]
                    spent = _run_simulated(venue, snap, frames, fast, core)
                else:
                    ds, fr, syms = case  # type: ignore[misc]
                    spent = _run_real(ds, fr, syms, fast, core)
                for lane, ns in spent.items():
                    per = results.setdefault(name, {}).setdefault(lane, {})
                    per.setdefault(path, []).append(sum(ns) / len(ns))
    names = [p for p, _, _ in PATHS]
    print(f"| frames | lane | {' | '.join(n + ' µs/frame' for n in names)} | reference / fast |")
    print(f"|---|---|{'---:|' * len(names)}---:|")
    for name, lanes in results.items():
        for lane, paths in sorted(lanes.items()):
            us = [statistics.median(paths[n]) / 1000 for n in names]
            cells = " | ".join(f"{u:.2f}" for u in us)
            print(f"| {name} | {lane} | {cells} | {us[0] / us[-1]:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
