from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.cli import build_parser, capture_settings, main, simulated_venues
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline_tests.cli_capture import CLI, cli_env, sim_capture_command
from orderbook_pipeline_tests.ports import free_ports

from .capture.conftest import SIM_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
MULTI = str(ROOT / "examples" / "multi_venue.yaml")


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch, tmp_path):
    """Only what a test passes: no OBP_* variables, no ./orderbook_pipeline.yaml."""
    for key in list(os.environ):
        if key.startswith("OBP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "command", [[], ["capture"], ["simulate"], ["config"], ["config", "show"], ["config", "get"]]
)
def test_every_help_page_prints(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: orderbook-pipeline")


def test_capture_help_lists_every_configuration_option(capsys):
    with pytest.raises(SystemExit):
        main(["capture", "--help"])
    out = capsys.readouterr().out
    for option in ("--band-pcts", "--lanes", "--config", "--set", "--exchange"):
        assert option in out
    assert "% from mid" in out


def test_capture_options_default_to_the_configuration_fields_they_override() -> None:
    """No option restates a default: unset, each leaves its configuration field to decide."""
    from orderbook_pipeline.cli import CAPTURE_OPTIONS
    from orderbook_pipeline.config.loader import field_annotation

    args = build_parser().parse_args(["capture"])
    for option, path, _help in CAPTURE_OPTIONS:
        assert field_annotation(tuple(path.format(venue="binance-spot").split("."))), option
        assert getattr(args, option.removeprefix("--").replace("-", "_")) is None, option
    assert args.allow_empty_symbols is None


def test_the_log_level_default_is_the_configurations_variable() -> None:
    from orderbook_pipeline.config import log_level

    assert log_level({}) == "INFO"
    assert log_level({"OBP_LOG_LEVEL": "DEBUG"}) == "DEBUG"


def test_bad_arguments_are_refused_with_a_message_naming_the_field(capsys):
    assert (
        main(["capture", "--venue", "binance-spot", "--symbols", "BTCUSDT", "--depths", "0"]) == 2
    )
    err = capsys.readouterr().err
    assert "venues.binance-spot.depths.0: must be positive integers" in err and "--depths" in err
    assert (
        main(["capture", "--venue", "binance-usdm", "--symbols", "X", "--snapshot-limit", "7"]) == 2
    )
    err = capsys.readouterr().err
    assert "venues.binance-usdm.snapshot_limit" in err and "snapshot limit must be one of" in err
    assert main(["capture", "--venue", "binance-usdm", "--lanes", "l2,trades"]) == 2
    assert "venues.binance-usdm.lanes.1: binance-usdm publishes no stream for 'trades'" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["capture", "--venue", "kraken", "--symbols", "BTCUSDT"])


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--max-streams-per-connection", "-1", "max_streams_per_connection must be between 1"),
        ("--max-streams-per-connection", "0", "max_streams_per_connection must be between 1"),
        ("--max-streams-per-connection", "5000", "binance-spot's limit 1024"),
        ("--stale-after", "0", "stale_after_s must be positive"),
        ("--stale-after", "-1", "stale_after_s must be positive"),
        ("--stale-after", "nan", "stale_after_s must be positive"),
    ],
)
def test_connection_options_out_of_range_are_refused(capsys, option, value, named):
    """Before: no connection opened, or 299 reconnects in 6 s; 0 events, exit 0 (issue 11)."""
    args = ["capture", "--venue", "binance-spot", "--symbols", "BTCUSDT", option, value]
    assert main(args) == 2
    assert named in capsys.readouterr().err


def test_an_invalid_configuration_file_stops_every_command(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("venues:\n  binance-spot:\n    symbols: [BTCUSDT]\n    depht: [10]\n")
    for argv in (
        ["capture", "--config", str(bad)],
        ["simulate", "--config", str(bad)],
        ["config", "show", "--config", str(bad)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "venues.binance-spot.depht: unknown field" in err and "bad.yaml" in err


def test_capture_needs_a_venue_when_the_configuration_has_several(capsys):
    assert main(["capture", "--config", MULTI]) == 2
    assert "--venue is required" in capsys.readouterr().err


def test_config_show_and_get_print_the_effective_configuration(capsys, monkeypatch):
    monkeypatch.setenv("OBP__VENUES__BINANCE_US__DEPTHS", "5,10")
    argv = ["--config", MULTI, "--set", "capture.burst_seconds=120"]
    assert main(["config", "show", *argv]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["capture"]["burst_seconds"] == 120  # --set over the file
    assert shown["venues"]["binance-us"]["depths"] == [5, 10]  # environment over the file
    assert shown["venues"]["binance-usdm"]["lanes"][:2] == ["l2", "diffs"]
    assert main(["config", "show", "--format", "json", *argv]) == 0
    assert json.loads(capsys.readouterr().out) == shown
    assert main(["config", "get", "venues.binance-spot.symbols", *argv]) == 0
    assert capsys.readouterr().out == "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT\n"
    assert main(["config", "get", "exchange"]) == 0  # no file: the real venue (design.md)
    assert capsys.readouterr().out == "binance\n"
    assert main(["config", "get", "venues.nowhere"]) == 2


def test_simulate_serves_the_configured_venues_on_their_ports():
    parse = build_parser().parse_args
    args = parse(["simulate", "--config", MULTI, "--all-venues"])
    assert simulated_venues(args) == [
        ("binance-spot", 9443, ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]),
        ("binance-usdm", 9444, ["BTCUSDT", "ETHUSDT"]),
        ("binance-us", 9445, ["BTCUSD"]),
    ]
    args = parse(["simulate", "--config", MULTI, "--venue", "binance-us", "--symbols", "x,y"])
    assert simulated_venues(args) == [("binance-us", 9445, ["X", "Y"])]
    # No configuration: the spot default, as `simulate` always did.
    assert simulated_venues(parse(["simulate"])) == [("binance-spot", 9443, ["BTCUSDT", "ETHUSDT"])]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bytes(resp.read())
    except OSError:
        return None


def test_simulate_all_venues_starts_one_exchange_per_venue_in_one_process(tmp_path):
    spot, usdm = free_ports(2)
    config = tmp_path / "two.yaml"
    config.write_text(
        f"venues:\n  binance-spot: {{symbols: [BTCUSDT], sim_port: {spot}}}\n"
        f"  binance-usdm: {{symbols: [ETHUSDT], sim_port: {usdm}}}\n"
    )
    cmd = [sys.executable, "-m", "orderbook_pipeline.cli", "simulate", "--all-venues"]
    proc = subprocess.Popen(
        [*cmd, "--config", str(config), "--levels", "200"],
        env={k: v for k, v in os.environ.items() if not k.startswith("OBP_")},
        stderr=subprocess.PIPE,
    )
    try:
        urls = [
            f"http://127.0.0.1:{spot}/api/v3/exchangeInfo?symbol=BTCUSDT",
            f"http://127.0.0.1:{usdm}/fapi/v1/exchangeInfo",
        ]
        deadline = time.monotonic() + 60
        answers: list[bytes | None] = [None, None]
        while None in answers and time.monotonic() < deadline and proc.poll() is None:
            answers = [_get(u) for u in urls]
            time.sleep(0.2)
        assert answers[0] is not None and b"BTCUSDT" in answers[0]
        assert answers[1] is not None and b"ETHUSDT" in answers[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    # The requests were answered without a log line each (websockets logs them at INFO).
    assert b"simulated binance-usdm" in err and b"websockets.server" not in err.replace(
        b"websockets.server: server listening", b""
    ), err.decode()


@pytest.mark.parametrize(
    ("duration", "code", "message"),
    [
        # The burst ends while exchangeInfo is still being retried: nothing was captured.
        ("1", 3, "captured nothing of 1 requested symbol(s): BTCUSDT"),
        # The retries give up first (about 6 s): the burst cannot start.
        ("60", 1, "exchangeInfo failed"),
    ],
)
def test_capture_exits_nonzero_when_the_exchange_is_unreachable(
    capsys, tmp_path, duration, code, message
):
    # Port 9 on loopback: nothing listens; every REST attempt fails fast.
    exit_code = main(
        [
            "capture",
            "--venue",
            "binance-spot",
            "--symbols",
            "BTCUSDT",
            "--duration",
            duration,
            "--data-root",
            str(tmp_path),
            "--ws-url",
            "ws://127.0.0.1:9",
            "--rest-url",
            "http://127.0.0.1:9",
        ]
    )
    assert exit_code == code
    assert message in capsys.readouterr().err


def test_capture_builds_its_burst_from_the_configuration_then_the_options():
    parse = build_parser().parse_args
    usdm = ["capture", "--config", MULTI, "--venue", "binance-usdm"]
    settings = capture_settings(parse(usdm))
    assert settings.venue.name == "binance-usdm" and settings.symbols == ["BTCUSDT", "ETHUSDT"]
    assert settings.depths == (20, 100) and settings.duration_s == 600  # capture.burst_seconds
    assert settings.ws_url is None and settings.rest_url is None  # exchange: binance
    assert settings.data_root == "s3://my-orderbook-lake/binance"
    options = [
        *("--exchange", "embedded", "--duration", "5", "--lanes", "l2,book_ticker"),
        *("--band-pcts", "0.5", "--deep-snapshot-interval", "30", "--deep-snapshot-limit", "500"),
        *("--partial-depth-levels", "5", "--file-seconds", "2", "--data-root", "/tmp/lake"),
    ]
    settings = capture_settings(parse([*usdm, *options]))
    assert settings.rest_url == "http://127.0.0.1:9444"  # the venue's own bundled exchange
    assert settings.duration_s == 5 and settings.max_file_seconds == 2
    assert settings.lanes == ("l2", "book_ticker") and settings.band_pcts == (0.5,)
    assert (settings.deep_snapshot_interval_s, settings.deep_snapshot_limit) == (30, 500)
    assert settings.partial_depth_levels == 5 and settings.data_root == "/tmp/lake"
    assert settings.stale_after_s == CaptureSettings.stale_after_s  # not given: the burst's own
    explicit = [*usdm, "--ws-url", "ws://127.0.0.1:1", "--burst-id", "b1", "--stale-after", "3"]
    settings = capture_settings(parse(explicit))
    assert settings.ws_url == "ws://127.0.0.1:1" and settings.burst_id == "b1"
    assert settings.stale_after_s == 3


def test_capture_at_debug_logs_botocore_requests_without_credentials(
    tmp_path, s3_endpoint, s3_root
):
    """Issue 11, defect 6: `--log-level DEBUG` printed the access key id botocore signs with."""
    key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token = "FwoGZXIvYXdzEXAMPLESESSIONTOKENVALUE1234567890"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBP_")}
    env.update(
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_SESSION_TOKEN=token,
        PYTHONPATH=str(ROOT),  # this checkout's package, whatever the venv's editable install
        TMPDIR=str(tmp_path),  # the S3 spool
    )
    with SimulatorThread(venue="binance-spot", symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        options = {
            "--venue": "binance-spot",
            "--symbols": "BTCUSDT",
            "--lanes": "l2",
            "--depths": "5",
            "--duration": "1",
            "--data-root": s3_root,
            "--s3-endpoint-url": s3_endpoint,
            "--ws-url": sim.ws_url,
            "--rest-url": sim.rest_url,
        }
        command = [
            sys.executable,
            "-m",
            "orderbook_pipeline.cli",
            "--log-level",
            "DEBUG",
            "capture",
        ]
        proc = subprocess.run(
            [*command, *(part for pair in options.items() for part in pair)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # botocore did log its signed uploads at DEBUG, with the credentials taken out.
    assert "DEBUG botocore.endpoint: Sending http request" in proc.stderr
    for value in (key_id, secret, token):
        assert value not in proc.stderr and value not in proc.stdout
    assert "'Authorization': b'AWS4-HMAC-SHA256 [REDACTED]'" in proc.stderr


def test_a_local_capture_never_loads_pyarrow_or_boto3(tmp_path):
    """pyarrow (and through it ~35 MB of resident memory) belongs to compaction and S3: a burst
    into a local data root, start to finish, loads neither it nor boto3."""
    listing = tmp_path / "modules.txt"
    code = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: open({str(listing)!r}, 'w').write('\\n'.join(sys.modules)))\n"
        "sys.argv = ['orderbook-pipeline', *sys.argv[1:]]\n"
        "runpy.run_module('orderbook_pipeline.cli', run_name='__main__')\n"
    )
    with SimulatorThread(venue="binance-spot", symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        options = [
            "--symbols",
            "BTCUSDT",
            "--lanes",
            "l2,diffs",
            "--depths",
            "5",
            "--duration",
            "2",
        ]
        command = sim_capture_command(sim, tmp_path / "data", *options)
        # The same command line, run through a prelude that lists the modules at exit.
        proc = subprocess.run(
            [sys.executable, "-c", code, *command[len(CLI) :]],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "data").rglob("*.avro")), "the burst wrote no bronze file"
    loaded = set(listing.read_text().split())
    assert "orderbook_pipeline.capture.burst" in loaded  # the listing is the burst's own
    assert not {m for m in loaded if m.split(".")[0] in ("pyarrow", "boto3", "botocore")}


def test_a_capture_reports_its_progress_while_it_runs(tmp_path):
    """Piped (not a terminal), the progress is one log line every --progress seconds."""
    with SimulatorThread(venue="binance-spot", symbols=["BTCUSDT"], **SIM_DEFAULTS) as sim:
        options = ["--symbols", "BTCUSDT", "--lanes", "l2", "--depths", "5"]
        options += ["--duration", "4", "--progress", "1"]
        proc = subprocess.run(
            sim_capture_command(sim, tmp_path, *options),
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if "orderbook_pipeline.capture: capture " in x]
    assert len(lines) >= 2, proc.stderr[-3000:]
    assert "1/1 books in sync" in lines[-1] and "events/s, lag p95" in lines[-1]
