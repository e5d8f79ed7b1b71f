"""The benchmark input: a BTCUSDT-like diff stream from the bundled exchange's own market model.

The frames are byte for byte what the simulator pushes on the raw stream
`/ws/btcusdt@depth@100ms` (orjson.dumps of the event payload, spot venue, 8-decimal strings),
and the snapshot is what its REST `/api/v3/depth?limit=5000` answers before the first event.
Generating costs ~0.5 ms an event (the model is pure Python), so a stream is generated once and
cached under $OBP_BENCH_DIR (default /tmp/obp-bench), in a folder named after its parameters.

    python -m benchmarks.stream [--quick]     # generate (or find) the stream, print its stats
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from orderbook_pipeline.venues import BINANCE_SPOT

# A fixed epoch for event times: the stream must be identical on every run.
_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_INTERVAL_MS = 100  # @100ms


@dataclass(frozen=True)
class StreamSpec:
    """Everything the stream's bytes depend on (and so its cache key)."""

    seed: int = 1
    symbol: str = "BTCUSDT"
    levels_per_side: int = 5300
    median_changes: int = 40
    max_changes: int = 500
    snapshot_limit: int = BINANCE_SPOT.max_snapshot_limit
    # Untimed events every measurement replays first: books behave differently after churn.
    history: int = 60_000
    # The longest timed window any contender may ask for (its events follow the history).
    window_max: int = 140_000

    @property
    def events(self) -> int:
        return self.history + self.window_max

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return (
            f"{self.symbol.lower()}-{self.events}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
        )


FULL = StreamSpec()
QUICK = StreamSpec(history=2_000, window_max=600)


def bench_dir() -> Path:
    return Path(os.environ.get("OBP_BENCH_DIR", "/tmp/obp-bench"))


def stream_dir(spec: StreamSpec) -> Path:
    return bench_dir() / spec.key()


def _generate(spec: StreamSpec, out: Path) -> dict[str, Any]:
    # Imported here: measuring workers only read the cached files and need not load the
    # simulator package (and its server).
    from orderbook_pipeline.simulator.market import Market

    # history_events only sizes the simulator's undo log (for stale snapshots); we never ask
    # for an old snapshot, so one entry is enough and keeps memory flat.
    market = Market(
        BINANCE_SPOT,
        spec.symbol,
        seed=spec.seed,
        levels_per_side=spec.levels_per_side,
        median_changes=spec.median_changes,
        max_changes=spec.max_changes,
        history_events=1,
    )
    snapshot = orjson.dumps(market.snapshot(spec.snapshot_limit, 0, _START_MS))
    (out / "snapshot.json").write_bytes(snapshot)
    changes = deletes = total_bytes = 0
    with open(out / "frames.jsonl", "wb") as f:
        for i in range(spec.events):
            payload = market.step(_START_MS + (i + 1) * _INTERVAL_MS).payload
            frame = orjson.dumps(payload)  # exactly the server's _send; never contains b"\n"
            f.write(frame + b"\n")
            total_bytes += len(frame)
            for side in (payload["b"], payload["a"]):
                changes += len(side)
                deletes += sum(1 for _, q in side if float(q) == 0.0)
    bids, asks = market.depth_counts()
    return {
        "spec": dataclasses.asdict(spec),
        "events": spec.events,
        "snapshot_levels": spec.snapshot_limit,
        "snapshot_bytes": len(snapshot),
        "mean_changes_per_event": round(changes / spec.events, 1),
        "delete_share": round(deletes / changes, 3),
        "mean_bytes_per_event": round(total_bytes / spec.events),
        "levels_per_side_end": {"bids": bids, "asks": asks},
    }


def ensure(spec: StreamSpec, log: Any = None) -> dict[str, Any]:
    """Generate the stream unless cached; return its stats."""
    final = stream_dir(spec)
    stats_path = final / "stats.json"
    if not stats_path.exists():
        if log:
            log(f"generating {spec.events} events into {final} (~{spec.events // 1000 + 1} s)")
        final.parent.mkdir(parents=True, exist_ok=True)
        # Build in a temporary folder and rename: a concurrent or interrupted run never sees
        # half a stream.
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            stats = _generate(spec, tmp)
            (tmp / "stats.json").write_text(json.dumps(stats))
            tmp.rename(final)
        except OSError:
            if not stats_path.exists():  # lost a race with nobody: a real failure
                raise
        finally:
            if tmp.exists():
                for p in tmp.iterdir():
                    p.unlink()
                tmp.rmdir()
    stats: dict[str, Any] = json.loads(stats_path.read_text())
    return stats


def load(spec: StreamSpec, n: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """(REST snapshot, the history frames, the first n frames after them)."""
    if n > spec.window_max:
        raise ValueError(f"window of {n} events asked for, the stream has {spec.window_max}")
    folder = stream_dir(spec)
    snapshot = (folder / "snapshot.json").read_bytes()
    with open(folder / "frames.jsonl", "rb") as f:
        lines = [line[:-1] for line in islice(f, spec.history + n)]
    return snapshot, lines[: spec.history], lines[spec.history :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small stream the tests use")
    args = ap.parse_args()
    spec = QUICK if args.quick else FULL
    stats = ensure(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({"dir": str(stream_dir(spec)), **stats}, indent=2))


if __name__ == "__main__":
    main()
