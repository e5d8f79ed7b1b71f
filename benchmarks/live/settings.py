"""The live benchmark's settings: the venue, the symbols, the burst's shape."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENUE = "binance-spot"
ROOT = Path(__file__).resolve().parent.parent.parent

# Real, liquid spot pairs first (so the stream names look like production), then synthetic ones.
# The exchange accepts any name: it derives tick, step and price from a hash of the name.
_REAL_SYMBOLS = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "TRXUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "BCHUSDT",
    "ATOMUSDT",
    "UNIUSDT",
    "ETCUSDT",
    "XLMUSDT",
    "FILUSDT",
    "APTUSDT",
    "ARBUSDT",
    "OPUSDT",
    "NEARUSDT",
    "INJUSDT",
    "SUIUSDT",
]


def symbol_names(n: int) -> list[str]:
    """n distinct, plausible spot symbols: real pairs, then S001USDT, S002USDT, ..."""
    if n <= 0:
        raise ValueError("at least one symbol")
    synthetic = [f"S{i:03d}USDT" for i in range(1, n + 1)]
    return (_REAL_SYMBOLS + synthetic)[:n]


# ---------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LiveSettings:
    symbols: int = 200
    duration_s: float = 300.0
    interval_ms: int = 100
    levels: int = 5000
    depths: str = "10,20,50"
    # The lanes captured: issue 4's targets are about the book lanes; "all" is every lane.
    lanes: str = "l2,diffs"
    # The capture's default (the venue's deepest, 5000 on spot) when None.
    snapshot_limit: int | None = None
    # CPU/RSS "steady" figures start here at the earliest (book bootstrap, process start-up).
    steady_after_s: float = 15.0
    profile: bool = False
    profile_rate: int = 100
    seed: int = 1
    # Data root to keep (with the logs and py-spy's raw profile); else a temporary one, removed.
    keep_dir: Path | None = None
    # Seconds to wait for the exchange to come up (200 symbols x 5,000 levels take a few).
    start_timeout_s: float = 120.0

    @classmethod
    def for_mode(cls, quick: bool, **overrides: Any) -> LiveSettings:
        base = cls(symbols=40, duration_s=20.0, steady_after_s=8.0) if quick else cls()
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **given})
