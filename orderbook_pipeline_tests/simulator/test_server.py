"""Bundled exchange over real sockets: a plain websockets client and httpx, one port."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from orderbook_pipeline.simulator import SimulatorThread
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM

FAST = {"interval_ms": 10, "levels_per_side": 300, "median_changes": 5}
SPOT_STREAM = BINANCE_SPOT.depth_stream("BTCUSDT")


@pytest.fixture
def sim():
    with SimulatorThread("binance-spot", ["BTCUSDT", "ETHUSDT"], **FAST) as s:
        yield s


def _data(frame: str | bytes) -> dict[str, Any]:
    msg = orjson.loads(frame)
    return msg["data"] if "stream" in msg else msg


async def _recv(url: str, n: int, during: Callable[[int], None] | None = None) -> list[Any]:
    """First n frames (raw text) of a connection; during(i) runs after the i-th frame."""
    frames = []
    async with connect(url) as ws:
        for i in range(n):
            frames.append(await asyncio.wait_for(ws.recv(), 5))
            if during:
                during(i)
    return frames


def _collect(url: str, n: int, during: Callable[[int], None] | None = None) -> list[Any]:
    return asyncio.run(_recv(url, n, during))


def _inject_at(sim: SimulatorThread, at: int, kind: str, **kw: Any) -> Callable[[int], None]:
    return lambda i: sim.inject(kind, **kw) if i == at else None


def _ids(frames: list[Any]) -> list[tuple[int, int]]:
    return [(d["U"], d["u"]) for d in map(_data, frames)]


# ----------------------------------------------------------------------------- streams
def test_combined_stream_frames_are_wrapped(sim: SimulatorThread) -> None:
    frames = [orjson.loads(f) for f in _collect(sim.combined_url(), 20)]
    assert {f["stream"] for f in frames} == {SPOT_STREAM, BINANCE_SPOT.depth_stream("ETHUSDT")}
    btc = [f["data"] for f in frames if f["stream"] == SPOT_STREAM]
    assert all(d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" for d in btc)
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(btc))
    assert sim.sent_log("BTCUSDT")[-1] >= btc[-1]["u"]


def test_raw_path_and_depth_alias(sim: SimulatorThread) -> None:
    for path in (f"/ws/{SPOT_STREAM}", "/ws/ethusdt@depth"):
        frames = [orjson.loads(f) for f in _collect(sim.ws_url + path, 3)]
        assert all("stream" not in f and f["e"] == "depthUpdate" for f in frames)


def test_usdm_public_prefix_and_plain_paths() -> None:
    with SimulatorThread(BINANCE_USDM, ["BTCUSDT"], **FAST) as usdm:
        url = usdm.combined_url()
        assert "/public/stream?streams=" in url
        for u in (url, url.replace("/public", ""), usdm.ws_url + "/public/ws/btcusdt@depth@100ms"):
            data = [_data(f) for f in _collect(u, 5)]
            assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(data))
            assert all(d["T"] <= d["E"] for d in data)


def test_subscribe_unsubscribe_and_unknown_streams(sim: SimulatorThread) -> None:
    async def run() -> None:
        async with connect(sim.ws_url + "/ws/dogeusdt@depth@100ms") as ws:
            with pytest.raises(TimeoutError):  # unknown symbol: accepted, silent
                await asyncio.wait_for(ws.recv(), 0.15)
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": [SPOT_STREAM], "id": 1}))
            assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
            assert orjson.loads(await ws.recv())["s"] == "BTCUSDT"
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            await ws.send(orjson.dumps({"method": "UNSUBSCRIBE", "params": [SPOT_STREAM], "id": 3}))
            replies = []
            while len(replies) < 2:
                msg = orjson.loads(await ws.recv())
                if "id" in msg:
                    replies.append(msg)
            assert replies[0] == {"result": sorted(["dogeusdt@depth@100ms", SPOT_STREAM]), "id": 2}
            assert replies[1] == {"result": None, "id": 3}
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.15)

    asyncio.run(run())


def test_too_many_streams_refused_and_chatty_client_cut() -> None:
    with SimulatorThread(BINANCE_SPOT, ["BTCUSDT"], max_streams_per_connection=2, **FAST) as s:

        async def run() -> None:
            with pytest.raises(InvalidStatus) as err:
                async with connect(s.ws_url + "/stream?streams=a@depth/b@depth/c@depth"):
                    pass
            assert err.value.response.status_code == 400
            async with connect(s.ws_url + "/ws") as ws:
                for i in range(BINANCE_SPOT.max_client_messages_per_s + 2):
                    await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                with pytest.raises(ConnectionClosedError):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1008

        asyncio.run(run())


# ----------------------------------------------------------------------------- REST
def test_depth_snapshot_matches_true_book(sim: SimulatorThread) -> None:
    r = httpx.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": "btcusdt", "limit": 50})
    body = r.json()
    assert r.status_code == 200 and len(body["bids"]) == len(body["asks"]) == 50
    bids, asks = sim.true_book("BTCUSDT", body["lastUpdateId"], 50)
    assert body["bids"] == [list(b) for b in bids] and body["asks"] == [list(a) for a in asks]
    assert r.headers["X-MBX-USED-WEIGHT-1M"] == str(BINANCE_SPOT.snapshot_weight(50))


def test_rest_errors_and_exchange_info(sim: SimulatorThread) -> None:
    base = sim.rest_url + "/api/v3"
    bad = httpx.get(f"{base}/depth", params={"symbol": "NOPE", "limit": 10})
    assert bad.status_code == 400 and bad.json()["code"] == -1121
    assert (
        httpx.get(f"{base}/depth", params={"symbol": "BTCUSDT", "limit": 5001}).json()["code"]
        == -1100
    )
    assert httpx.get(f"{base}/exchangeInfo", params={"symbol": "NOPE"}).json()["code"] == -1121
    assert httpx.get(sim.rest_url + "/nope").status_code == 404
    assert httpx.get(f"{base}/ping").json() == {}
    assert abs(httpx.get(f"{base}/time").json()["serverTime"] / 1000 - time.time()) < 5
    info = httpx.get(f"{base}/exchangeInfo", params={"symbols": '["ETHUSDT","BTCUSDT"]'}).json()
    assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    filters = {f["filterType"]: f for f in info["symbols"][1]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert len(httpx.get(f"{base}/exchangeInfo").json()["symbols"]) == 2
    assert sim.exchange.rest_requests["/api/v3/exchangeInfo"] == 3


def test_usdm_rest_rules() -> None:
    with SimulatorThread(BINANCE_USDM, ["BTCUSDT", "ETHUSDT"], **FAST) as s:
        base = s.rest_url + "/fapi/v1"
        assert (
            httpx.get(f"{base}/depth", params={"symbol": "BTCUSDT", "limit": 7}).status_code == 400
        )
        snap = httpx.get(f"{base}/depth", params={"symbol": "BTCUSDT", "limit": 5}).json()
        assert {"lastUpdateId", "E", "T", "bids", "asks"} <= snap.keys()
        info = httpx.get(f"{base}/exchangeInfo", params={"symbol": "BTCUSDT"}).json()
        assert len(info["symbols"]) == 2  # USD-M ignores the filter
        assert info["symbols"][0]["filters"][0]["tickSize"] == "0.01"


def test_weight_budget_gives_429() -> None:
    with SimulatorThread(BINANCE_SPOT, ["BTCUSDT"], weight_limit_1m=12, **FAST) as s:
        s.exchange.clock = lambda: 6_000_020.0  # 40 s before the minute window ends
        url, params = f"{s.rest_url}/api/v3/depth", {"symbol": "BTCUSDT", "limit": 10}
        used = [int(httpx.get(url, params=params).headers["X-MBX-USED-WEIGHT-1M"]) for _ in "ab"]
        assert used == [5, 10]
        r = httpx.get(url, params=params)
        assert r.status_code == 429 and r.json()["code"] == -1003
        assert r.headers["Retry-After"] == "40"
        s.exchange.clock = lambda: 6_000_061.0  # next window: budget restored
        assert httpx.get(url, params=params).headers["X-MBX-USED-WEIGHT-1M"] == "5"


# ----------------------------------------------------------------------------- faults
def test_drop_makes_a_gap(sim: SimulatorThread) -> None:
    frames = _collect(
        f"{sim.ws_url}/ws/{SPOT_STREAM}", 40, _inject_at(sim, 3, "drop", symbol="BTCUSDT", count=2)
    )
    ids = _ids(frames)
    gaps = [(a, b) for a, b in itertools.pairwise(ids) if b[0] != a[1] + 1]
    assert len(gaps) == 1
    generated = [g["u"] for g in sim.generated("BTCUSDT")]
    lo, hi = generated.index(gaps[0][0][1]), generated.index(gaps[0][1][1])
    assert hi - lo == 3  # two events missing in between
    assert not set(generated[lo + 1 : hi]) & set(sim.sent_log("BTCUSDT"))


def test_duplicate_and_reorder(sim: SimulatorThread) -> None:
    ids = _ids(
        _collect(
            f"{sim.ws_url}/ws/{SPOT_STREAM}", 40, _inject_at(sim, 2, "duplicate", symbol="BTCUSDT")
        )
    )
    dups = [i for i in range(len(ids) - 1) if ids[i] == ids[i + 1]]
    assert len(dups) == 1
    assert sum(1 for u in sim.sent_log("BTCUSDT") if u == ids[dups[0]][1]) == 2
    ids = _ids(
        _collect(
            f"{sim.ws_url}/ws/{SPOT_STREAM}", 40, _inject_at(sim, 2, "reorder", symbol="BTCUSDT")
        )
    )
    swaps = [i for i in range(len(ids) - 1) if ids[i + 1][1] < ids[i][0]]
    assert len(swaps) == 1
    i = swaps[0]
    assert ids[i + 1][1] + 1 == ids[i][0]  # the two events are adjacent, just swapped


def test_malformed_frames(sim: SimulatorThread) -> None:
    def arm(i: int) -> None:
        if i == 2:
            for variant in ("invalid_json", "wrong_types", "nan_qty", "negative_qty"):
                sim.inject("malformed", symbol="BTCUSDT", variant=variant)

    frames = _collect(sim.combined_url(["BTCUSDT"]), 40, arm)

    def parses(frame: str) -> bool:
        try:
            orjson.loads(frame)
        except orjson.JSONDecodeError:
            return False
        return True

    first = next(i for i, f in enumerate(frames) if not parses(f))  # frames may be in flight
    assert first >= 3
    bad = frames[first : first + 4]
    wrong = _data(bad[1])
    assert wrong["U"] == "abc" and wrong["b"] == "x"
    assert "NaN" in [q for k in "ba" for _, q in _data(bad[2])[k]]
    assert "-1.00000000" in [q for k in "ba" for _, q in _data(bad[3])[k]]
    before, after = _ids(frames[:first]), _ids(frames[first + 4 :])
    assert after[0][0] > before[-1][1] + 1  # the four real events were never delivered
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(after))


def test_disconnect_aborts_without_close_frame(sim: SimulatorThread) -> None:
    with pytest.raises(ConnectionClosedError) as err:
        _collect(sim.combined_url(), 50, _inject_at(sim, 1, "disconnect"))
    assert err.value.rcvd is None


def test_server_close_announces_then_1001(sim: SimulatorThread) -> None:
    async def run() -> list[Any]:
        got: list[Any] = []
        async with connect(sim.combined_url(["BTCUSDT"])) as ws:
            await ws.recv()
            sim.inject("server_close", grace_s=0.1)
            with pytest.raises(ConnectionClosedOK):
                while True:
                    got.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert ws.close_code == 1001
        return got

    got = asyncio.run(run())
    notice = next(i for i, m in enumerate(got) if m.get("e") == "serverShutdown")
    assert len(got) - notice > 2  # data kept flowing during the grace period


def test_rest_faults(sim: SimulatorThread) -> None:
    depth, params = f"{sim.rest_url}/api/v3/depth", {"symbol": "BTCUSDT", "limit": 10}
    sim.inject("rate_limit", count=2, retry_after_s=7)
    for _ in range(2):
        r = httpx.get(depth, params=params)
        assert (r.status_code, r.headers["Retry-After"]) == (429, "7")
    assert httpx.get(depth, params=params).status_code == 200
    sim.inject("rate_limit", status=418, retry_after_s=120)
    assert httpx.get(f"{sim.rest_url}/api/v3/time").status_code == 418
    sim.inject("http_error", count=1, status=503)
    assert httpx.get(f"{sim.rest_url}/api/v3/time").status_code == 200  # depth only
    assert httpx.get(depth, params=params).status_code == 503
    assert httpx.get(depth, params=params).status_code == 200


def test_stale_snapshot(sim: SimulatorThread) -> None:
    while len(sim.generated("BTCUSDT")) < 8:  # the lag needs some history behind it
        time.sleep(0.01)
    sim.inject("stale_snapshot", symbol="BTCUSDT", lag_events=5)
    stale = httpx.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})
    fresh = httpx.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})
    generated = [g["u"] for g in sim.generated("BTCUSDT")]
    old, new = stale.json()["lastUpdateId"], fresh.json()["lastUpdateId"]
    assert generated.index(new) - generated.index(old) >= 5
    bids, _ = sim.true_book("BTCUSDT", old, 5)
    assert stale.json()["bids"] == [list(b) for b in bids]


def test_silent_pauses_then_resumes(sim: SimulatorThread) -> None:
    async def run() -> tuple[list[float], list[tuple[int, int]]]:
        stamps, ids = [], []
        async with connect(f"{sim.ws_url}/ws/{SPOT_STREAM}") as ws:
            ids.extend(_ids([await ws.recv()]))
            stamps.append(time.monotonic())
            sim.inject("silent", duration_s=0.3)
            armed = time.monotonic()
            while time.monotonic() < armed + 0.3 or len(stamps) < 15:
                ids.extend(_ids([await asyncio.wait_for(ws.recv(), 5)]))
                stamps.append(time.monotonic())
        return stamps, ids

    stamps, ids = asyncio.run(run())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    longest = max(range(len(gaps)), key=gaps.__getitem__)
    assert 0.2 < gaps[longest] < 1.0  # no frames for the window, same connection afterwards
    assert len(stamps) - longest > 3  # frames resumed
    assert ids[longest + 1][0] > ids[longest][1] + 1  # events of the silence are lost


def test_control_endpoints_over_http(sim: SimulatorThread) -> None:
    sim_url = sim.rest_url + "/sim"
    book = httpx.get(f"{sim_url}/book", params={"symbol": "BTCUSDT", "limit": 3}).json()
    assert len(book["bids"]) == 3
    uid = book["lastUpdateId"]
    assert (
        httpx.get(f"{sim_url}/book", params={"symbol": "BTCUSDT", "update_id": uid}).json()["bids"][
            :3
        ]
        == book["bids"]
    )
    assert httpx.get(f"{sim_url}/fault", params={"kind": "bogus"}).status_code == 400
    assert (
        httpx.get(f"{sim_url}/fault", params={"kind": "drop", "symbol": "NOPE"}).status_code == 400
    )

    def arm(i: int) -> None:
        if i == 1:
            q = {"kind": "malformed", "symbol": "BTCUSDT", "variant": "nan_qty"}
            assert httpx.get(f"{sim_url}/fault", params=q).json() == {"ok": True}

    frames = [_data(f) for f in _collect(f"{sim.ws_url}/ws/{SPOT_STREAM}", 40, arm)]
    nan = [i for i, f in enumerate(frames) if "NaN" in [q for k in "ba" for _, q in f[k]]]
    assert len(nan) == 1 and nan[0] >= 2
    sent = httpx.get(f"{sim_url}/sent", params={"symbol": "BTCUSDT"}).json()["u"]
    assert frames[0]["u"] in sent and frames[-1]["u"] in sent
    assert frames[nan[0]]["u"] not in sent  # a malformed frame is not a delivered event
