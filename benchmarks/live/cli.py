"""The command line: python -m benchmarks.live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks import live
from benchmarks.live.burst import measure
from benchmarks.live.report import render
from benchmarks.live.settings import LiveSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live", description=(live.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="40 symbols for 20 s")
    parser.add_argument("--symbols", type=int, help="number of symbols (default 200; quick 40)")
    parser.add_argument("--duration", type=float, help="burst seconds (default 300; quick 20)")
    parser.add_argument("--snapshot-limit", type=int, help="default: the capture's (5000 on spot)")
    parser.add_argument("--lanes", help="comma-separated, or 'all' (default l2,diffs)")
    parser.add_argument("--steady-after", type=float, help="seconds (default 15; quick 8)")
    parser.add_argument("--profile", action="store_true", help="py-spy the steady phase")
    parser.add_argument("--keep", type=Path, help="data root to use and keep")
    parser.add_argument("--json", type=Path, help="also write the figures and timeline here")
    args = parser.parse_args(argv)
    settings = LiveSettings.for_mode(
        args.quick,
        symbols=args.symbols,
        duration_s=args.duration,
        snapshot_limit=args.snapshot_limit,
        lanes=args.lanes,
        steady_after_s=args.steady_after,
        profile=args.profile or None,
        keep_dir=args.keep,
    )
    run = measure(settings)
    print(render(run), flush=True)
    if args.json:
        payload = {
            "settings": {k: str(v) for k, v in settings.__dict__.items()},
            "figures": run.figures(),
            "timeline": run.timeline(),
            "summary": run.summary,
            "profile": run.profile.__dict__ if run.profile else None,
            "drops": {sym: d.__dict__ for sym, d in run.drops.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0
