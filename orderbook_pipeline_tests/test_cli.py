from __future__ import annotations

import pytest

from orderbook_pipeline.cli import main


def test_bad_arguments_are_refused_with_a_message(capsys):
    assert (
        main(["capture", "--venue", "binance-spot", "--symbols", "BTCUSDT", "--depths", "0"]) == 2
    )
    assert "depths must be positive" in capsys.readouterr().err
    assert (
        main(["capture", "--venue", "binance-usdm", "--symbols", "X", "--snapshot-limit", "7"]) == 2
    )
    assert "snapshot limit must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["capture", "--venue", "kraken", "--symbols", "BTCUSDT"])


def test_capture_exits_nonzero_when_the_exchange_is_unreachable(capsys, tmp_path):
    # Port 9 on loopback: nothing listens; every REST attempt fails fast.
    code = main(
        [
            "capture",
            "--venue",
            "binance-spot",
            "--symbols",
            "BTCUSDT",
            "--duration",
            "1",
            "--data-root",
            str(tmp_path),
            "--ws-url",
            "ws://127.0.0.1:9",
            "--rest-url",
            "http://127.0.0.1:9",
        ]
    )
    assert code == 1
    assert "exchangeInfo failed" in capsys.readouterr().err
