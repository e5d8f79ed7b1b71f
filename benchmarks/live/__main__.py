"""python -m benchmarks.live: see benchmarks.live.cli."""

from __future__ import annotations

from benchmarks.live.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
