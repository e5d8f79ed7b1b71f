"""Options, symbol names and symbol counts are validated where they enter, with the field
named and exit 2; a burst that captured nothing of a requested symbol says so and fails
(issue 11, defects 3 and 5)."""

from __future__ import annotations

import dagster as dg
import pytest

from orderbook_pipeline.capture.settings import MAX_CONNECTIONS, CaptureSettings
from orderbook_pipeline.cli import main
from orderbook_pipeline.config import ConfigError, load_config
from orderbook_pipeline.jobs import CaptureConfig, capture_job
from orderbook_pipeline.resources import CaptureTarget
from orderbook_pipeline.venues import BINANCE_SPOT, BINANCE_USDM, MAX_STREAM_URL_CHARS
from orderbook_pipeline_tests.cli_capture import run_cli

BAD_NAMES = ["../../etc", "BTC'USDT", "btc usdt", "BTC/USDT", "X" * 500, "BTC\nUSDT", "ÄUSDT"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_symbol_that_is_not_a_binance_symbol_is_refused_with_its_field(capsys, name):
    code = main(["capture", "--venue", "binance-spot", "--symbols", f"ETHUSDT,{name}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "venues.binance-spot.symbols.1" in err and "is not a Binance symbol" in err
    with pytest.raises(ConfigError, match=r"venues\.binance-spot\.symbols\.0"):
        load_config(None, sets=[f"venues.binance-spot.symbols={name.replace(',', '')}"])


def test_symbols_keep_binance_s_alphabet_and_case_is_normalised():
    s = CaptureSettings(venue=BINANCE_USDM, symbols=["btcusdt", "BTCUSDT_210924", "1000PEPEUSDT"])
    assert s.symbols == ["BTCUSDT", "BTCUSDT_210924", "1000PEPEUSDT"]


def test_ten_thousand_symbols_split_over_connections_whose_urls_fit():
    symbols = [f"S{i:05d}USDT" for i in range(10_000)]
    s = CaptureSettings(venue=BINANCE_SPOT, symbols=symbols, lanes=("l2", "diffs"))
    groups = s.connection_groups(symbols)
    assert sum(len(names) for _prefix, names in groups) == 10_000
    for prefix, names in groups:
        url = BINANCE_SPOT.combined_stream_url(names, s.ws_url, prefix)
        assert len(url) <= MAX_STREAM_URL_CHARS and len(names) <= 1024
    assert len(groups) <= MAX_CONNECTIONS


def test_more_connections_than_the_ip_may_open_is_refused(capsys):
    symbols = ",".join(f"S{i:03d}USDT" for i in range(200))
    code = main(
        [
            "capture",
            "--venue",
            "binance-spot",
            "--symbols",
            symbols,
            "--lanes",
            "l2,diffs",
            "--max-streams-per-connection",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "need 200 websocket connections" in err and "300 connection attempts" in err


def test_a_symbol_that_captured_nothing_fails_the_burst_unless_accepted(simulator, tmp_path):
    """An unknown symbol beside a known one: before the fix, exit 0 with only a log line."""
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    args = ["--symbols", "BTCUSDT,NOPEUSDT", "--duration", "3", "--lanes", "l2,diffs"]
    run = run_cli(sim, tmp_path / "a", args)
    assert run.code == 3, run.stderr
    assert run.summary is not None and run.summary["empty_symbols"] == ["NOPEUSDT"]
    assert run.summary["unknown_symbols"] == ["NOPEUSDT"] and run.summary["records"] > 0
    assert "captured nothing of 1 requested symbol(s): NOPEUSDT" in run.stderr
    accepted = run_cli(sim, tmp_path / "b", [*args, "--allow-empty-symbols"])
    assert accepted.code == 0, accepted.stderr
    assert accepted.summary is not None and accepted.summary["empty_symbols"] == ["NOPEUSDT"]


def test_the_dagster_capture_fails_visibly_when_a_symbol_captured_nothing(simulator, tmp_path):
    sim = simulator(BINANCE_SPOT, ["BTCUSDT"])
    target = CaptureTarget(
        exchange="embedded", sim_port=sim.port, data_root=str(tmp_path), lanes=["l2", "diffs"]
    )
    config = CaptureConfig(symbols=["BTCUSDT", "NOPEUSDT"], depths=[5], duration_s=2.0)
    with dg.instance_for_test() as instance:
        result = capture_job.execute_in_process(
            instance=instance,
            resources={"capture_target": target},
            run_config=dg.RunConfig(ops={"capture_burst": config}),
            raise_on_error=False,
        )
        assert not result.success
        failure = result.failure_data_for_node("capture_burst")
        assert failure is not None and "NOPEUSDT" in failure.error.message
        # What the burst did capture is published, and in the instance's event log all the same.
        assert list(tmp_path.rglob("*.avro"))
        reported = instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        assert {e.dagster_event.asset_key.path[-1] for e in reported} >= {"l2", "diffs"}


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--ws-url", "localhost:9443", "ws_url: 'localhost:9443' is not a ws/wss:// URL"),
        ("--ws-url", "ws://127.0.0.1:99999", "ws_url: 'ws://127.0.0.1:99999' is not a URL"),
        ("--rest-url", "ftp://127.0.0.1", "rest_url: 'ftp://127.0.0.1' is not a http/https://"),
        ("--s3-endpoint-url", "http://", "s3_endpoint_url: 'http://' is not a http/https://"),
        ("--data-root", "s3://My_Bucket/x", "data_root: 'My_Bucket' is not an S3 bucket name"),
    ],
)
def test_endpoints_that_cannot_work_are_refused_before_the_burst(capsys, option, value, named):
    code = main(["capture", "--venue", "binance-spot", "--symbols", "BTCUSDT", option, value])
    assert code == 2
    assert named in capsys.readouterr().err
