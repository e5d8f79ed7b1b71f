"""klines: OHLCV candles fetched over REST by an asset of their own (assets/klines.py).

A candle fetched again later (it may have been open when first fetched) supersedes; the bronze
is rewritten in place, so every refresh compacts it all."""

from __future__ import annotations

from orderbook_pipeline.core.klines import parse_kline
from orderbook_pipeline.lanes.avro_types import TS
from orderbook_pipeline.lanes.spec import Lane, asc

_NUMBERS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)

LANE = Lane(
    name="klines",
    record="KlineRecord",
    fields=(
        {"name": "interval", "type": "string"},
        {"name": "open_ts", "type": TS},
        {"name": "close_ts", "type": TS},
        *({"name": n, "type": "long" if n == "trades" else "double"} for n in _NUMBERS),
        # The exchange's strings as sent (the burst_id is the backfill run that fetched it).
        *({"name": f"{n}_str", "type": "string"} for n in _NUMBERS if n != "trades"),
        {"name": "fetched_ts", "type": TS},
    ),
    partition_ts="open_ts",
    key=("interval", "open_ts"),
    preference=(("fetched_ts", "descending"), ("burst_id", "ascending")),
    order=asc("interval", "open_ts"),
    description="Klines (OHLCV candles) fetched over REST; a later fetch of a candle supersedes.",
    incremental=False,
    own_asset=True,
    parse=parse_kline,
)
