"""Kline backfill over REST: fetch closed klines of any hour range and store one bronze file per
(hour, interval), replacing it atomically, so re-running a range never duplicates anything.

File: `bronze/klines/market=V/symbol=S/dt=D/hour=HH/klines-{interval}-0.avro` (so
layout.burst_id_of says "klines-1m"). Its bytes are a function of its records (fixed codec and
an Avro sync marker derived from the path), and merge_klines keeps the fetched_ts/burst_id of
rows the exchange confirms unchanged: re-running a complete hour leaves its file byte for byte
as it was, and the file is not even re-uploaded.

Only closed klines are stored (closed at least CLOSED_MARGIN_MS before the exchange's clock,
read from the answer's Date header, or GET time without one), so re-running the hour in progress later completes it. A row that breaks
Binance's documented format fails the hour with BadKline naming it: REST data can always be
fetched again, while a silently thinned lake cannot be told from a quiet market. Klines the
exchange simply does not have (before a listing, outage windows, still forming) are counted as
missing, not errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fastavro
import httpx

from orderbook_pipeline.capture.metrics import BurstMetrics
from orderbook_pipeline.capture.rest import RestClient, WeightBudget
from orderbook_pipeline.capture.settings import WEIGHT_SAFETY, new_burst_id
from orderbook_pipeline.core.klines import (
    HOUR_MS,
    BadKline,
    KlineRequest,
    cheapest_chunk,
    expected_in_hour,
    interval_ms,
    merge_klines,
    parse_kline,
    plan_requests,
)
from orderbook_pipeline.lanes.registry import LANES
from orderbook_pipeline.storage.layout import Partition
from orderbook_pipeline.storage.store import Store
from orderbook_pipeline.venues import Venue

log = logging.getLogger("orderbook_pipeline.capture.klines")

LANE = "klines"
CODEC = "snappy"  # as every bronze lane
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = datetime.resolution  # timedelta(microseconds=1)
_TS_FIELDS = ("open_ts", "close_ts", "fetched_ts")
# A kline counts as closed only if it closed this long before the answer's Date: the exchange
# computes the rows a moment before it stamps the Date, so a kline still forming when computed
# could otherwise look closed at a minute boundary.
CLOSED_MARGIN_MS = 1000


def kline_file(venue: str, symbol: str, hour_start_ms: int, interval: str) -> str:
    """The one bronze file of an (hour, interval): the same name on every run."""
    part = Partition(LANE, venue, symbol, hour_start_ms * 1000)
    return part.bronze_file(f"klines-{interval}", 0)


def encode_klines(records: Sequence[dict[str, Any]], rel_path: str) -> bytes:
    """Avro container bytes determined by the records alone (fastavro's sync marker is random
    unless given: derive it from the path, so identical content gives identical bytes)."""
    marker = hashlib.sha256(rel_path.encode()).digest()[:16]
    buf = io.BytesIO()
    fastavro.writer(buf, LANES[LANE].parsed, list(records), codec=CODEC, sync_marker=marker)
    return buf.getvalue()


def decode_klines(data: bytes) -> list[dict[str, Any]]:
    """Records of a kline file with timestamps as int µs (fastavro gives datetimes)."""
    out = []
    for rec in fastavro.reader(io.BytesIO(data)):
        assert isinstance(rec, dict)
        for name in _TS_FIELDS:
            value = rec[name]
            if isinstance(value, datetime):
                rec[name] = (value - _EPOCH) // _US
        out.append(rec)
    return out


@dataclass
class IntervalHour:
    """What one (hour, interval) holds after a run."""

    interval: str
    hour_start_ms: int
    path: str
    expected: int  # open times in the hour (60 for 1m; 0 or 1 above an hour)
    stored: int = 0  # closed klines in the file now
    fetched: int = 0  # closed klines this run received for the hour
    unclosed: int = 0  # still forming when fetched: not stored
    status: str = "empty"  # "written", "unchanged" or "empty" (no file: nothing closed yet)

    @property
    def missing(self) -> int:
        return self.expected - self.stored


@dataclass
class FetchStats:
    requests: int = 0
    weight: int = 0
    rate_limited: int = 0
    rest_errors: dict[str, int] = field(default_factory=dict)


def _server_now_ms(resp: httpx.Response) -> int | None:
    """The exchange's clock from the answer's Date header (whole seconds, so never ahead)."""
    date = resp.headers.get("Date")
    if not date:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(date).timestamp()) * 1000
    except (TypeError, ValueError):
        return None


def _kline_rows(body: Any) -> list[Any]:
    """GET klines answers a list of rows (each validated by parse_kline)."""
    if not isinstance(body, list):
        raise TypeError(f"the answer is {type(body).__name__}, not a list of rows")
    return body


class KlineFetcher:
    """Fetches and stores klines through one RestClient (one weight budget)."""

    def __init__(
        self, client: RestClient, store: Store, burst_id: str, stats: FetchStats | None = None
    ) -> None:
        self.client = client
        self.venue: Venue = client.venue
        self.store = store
        self.burst_id = burst_id
        self.stats = stats or FetchStats()

    async def _server_time_ms(self) -> int:
        now_ms = await self.client.server_time_ms()
        self.stats.requests += 1
        self.stats.weight += 1
        return now_ms

    async def fetch(
        self, symbol: str, req: KlineRequest
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(closed, still forming) records of one request, each row validated."""
        resp, rows = await self.client.fetch(
            self.venue.klines_path, req.params(symbol), req.weight, _kline_rows
        )
        fetched_us = time.time_ns() // 1000
        self.stats.requests += 1
        self.stats.weight += req.weight
        now_ms = _server_now_ms(resp)
        if now_ms is None:
            now_ms = await self._server_time_ms()
        closed, forming = [], []
        prev = None
        for row in rows:
            try:
                rec = parse_kline(
                    row,
                    venue=self.venue.name,
                    symbol=symbol,
                    interval=req.interval,
                    fetched_us=fetched_us,
                    burst_id=self.burst_id,
                )
            except BadKline as exc:
                raise BadKline(f"{self.venue.name} {symbol} {req.interval}: {exc}") from None
            open_ms = rec["open_ts"] // 1000
            if not req.start_ms <= open_ms <= req.end_ms or (prev is not None and open_ms <= prev):
                raise BadKline(
                    f"{self.venue.name} {symbol} {req.interval}: open time {open_ms} out of "
                    f"order or outside the requested {req.start_ms}..{req.end_ms}"
                )
            prev = open_ms
            if rec["close_ts"] // 1000 < now_ms - CLOSED_MARGIN_MS:
                closed.append(rec)
            else:
                forming.append(rec)
        return closed, forming

    async def run(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> list[IntervalHour]:
        """Fetch and store `interval` klines of every hour in [start_ms, end_ms) (whole hours).

        Window by window of whole hours that one cheapest request covers (16 hours of 1m klines
        on spot), each stored before the next is fetched: any range runs in bounded memory.
        """
        if start_ms % HOUR_MS or end_ms % HOUR_MS:
            raise ValueError("kline ranges are whole UTC hours")
        per_request = cheapest_chunk(self.venue) * interval_ms(interval)
        window = max(1, per_request // HOUR_MS) * HOUR_MS
        results = []
        for w_start in range(start_ms, end_ms, window):
            results += await self._window(symbol, interval, w_start, min(end_ms, w_start + window))
        return results

    async def _window(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> list[IntervalHour]:
        by_hour: dict[int, list[dict[str, Any]]] = defaultdict(list)
        unclosed: dict[int, int] = defaultdict(int)
        for req in plan_requests(self.venue, interval, start_ms, end_ms):
            closed, forming = await self.fetch(symbol, req)
            for rec in closed:
                by_hour[_hour_of(rec)].append(rec)
            for rec in forming:
                unclosed[_hour_of(rec)] += 1
        results = []
        for hour in range(start_ms, end_ms, HOUR_MS):
            expected = len(expected_in_hour(interval, hour))
            if expected == 0:
                continue  # e.g. 1d klines outside hour 00
            res = IntervalHour(
                interval, hour, kline_file(self.venue.name, symbol, hour, interval), expected
            )
            res.fetched, res.unclosed = len(by_hour[hour]), unclosed[hour]
            self._store(res, by_hour[hour])
            results.append(res)
        return results

    def _store(self, res: IntervalHour, fetched: list[dict[str, Any]]) -> None:
        try:
            old_bytes: bytes | None = self.store.read_bytes(res.path)
        except FileNotFoundError:
            old_bytes = None
        existing: list[dict[str, Any]] = []
        if old_bytes is not None:
            try:
                existing = decode_klines(old_bytes)
            except Exception as exc:  # our own file, fully re-fetchable: rebuild it
                log.warning("%s unreadable (%r): replacing it", res.path, exc)
        merged = merge_klines(existing, fetched)
        res.stored = len(merged)
        if not merged:
            return  # nothing closed yet: no file rather than an empty one
        data = encode_klines(merged, res.path)
        if data == old_bytes:
            res.status = "unchanged"
            return
        self.store.write_bytes(res.path, data)  # temporary + atomic publish: replaces the old
        res.status = "written"
        log.info("%s: %d klines (%d expected)", res.path, res.stored, res.expected)


def _hour_of(rec: dict[str, Any]) -> int:
    open_ms: int = rec["open_ts"] // 1000
    return open_ms - open_ms % HOUR_MS


@dataclass
class KlinesReport:
    hours: list[IntervalHour]
    stats: FetchStats


async def fetch_klines(
    *,
    venue: Venue,
    symbols: Sequence[str],
    intervals: Sequence[str],
    start_ms: int,
    end_ms: int,
    store: Store,
    rest_base: str | None = None,
    burst_id: str | None = None,
    weight_safety: float = WEIGHT_SAFETY,
    http: httpx.AsyncClient | None = None,
) -> KlinesReport:
    """Backfill klines of whole hours [start_ms, end_ms) for symbols × intervals.

    One weight budget for everything (the venue's limit × weight_safety, paced by the
    X-MBX-USED-WEIGHT-1M header every answer carries, so other processes on this IP count too);
    429/418 wait for Retry-After, 5xx and network errors are retried by RestClient.
    """
    for interval in intervals:
        interval_ms(interval)
    burst = burst_id or f"klines-{new_burst_id()}"
    metrics = BurstMetrics(burst, venue.name, list(symbols))
    budget = WeightBudget(venue.weight_limit_1m, weight_safety)
    stats = FetchStats()
    hours: list[IntervalHour] = []
    own_http = http is None
    client_http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False)
    try:
        rest = RestClient(venue, rest_base or venue.rest_base, client_http, metrics, budget)
        fetcher = KlineFetcher(rest, store, burst, stats)
        for symbol in symbols:
            for interval in intervals:
                hours += await fetcher.run(symbol, interval, start_ms, end_ms)
    finally:
        stats.rate_limited = metrics.rate_limited
        stats.rest_errors = dict(metrics.rest_errors)
        if own_http:
            await client_http.aclose()
    return KlinesReport(hours, stats)


def hour_floor_ms(dt: datetime) -> int:
    ms = int(dt.timestamp() * 1000)
    return ms - ms % HOUR_MS


def backfill_klines(
    venue: Venue,
    symbols: Sequence[str],
    intervals: Sequence[str],
    start: datetime,
    end: datetime,
    store: Store,
    rest_base: str | None = None,
) -> KlinesReport:
    """Blocking backfill of the hours touching [start, end), outside Dagster.

    Long ranges cost far fewer requests than hour-by-hour partitions: each request covers as
    many whole hours as the cheapest-weight chunk allows (1000 klines on spot, 499 on USD-M),
    e.g. 16 hours of 1m klines on spot in one request of weight 2.
    """
    start_ms = hour_floor_ms(start)
    end_ms = -(-int(end.timestamp() * 1000) // HOUR_MS) * HOUR_MS
    return asyncio.run(
        fetch_klines(
            venue=venue,
            symbols=symbols,
            intervals=intervals,
            start_ms=start_ms,
            end_ms=end_ms,
            store=store,
            rest_base=rest_base,
        )
    )
