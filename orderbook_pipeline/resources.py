"""Where captures go and what they capture, chosen in one place from the environment.

The embedded default needs no internet: the bundled exchange on loopback and a local data folder.
Pointing at real Binance is one setting (OBP_EXCHANGE=binance), S3 another (OBP_DATA_ROOT=s3://...).
"""

from __future__ import annotations

import os

import dagster as dg

from orderbook_pipeline.venues import get_venue

SIM_PORT_DEFAULT = 9443


class CaptureTarget(dg.ConfigurableResource):  # type: ignore[misc]
    """The exchange endpoints and storage root every capture burst uses."""

    exchange: str = "embedded"  # "embedded" (the bundled exchange) or "binance" (the real venue)
    venue: str = "binance-spot"
    sim_port: int = SIM_PORT_DEFAULT
    data_root: str = "./data"
    s3_endpoint_url: str = ""

    def endpoints(self) -> tuple[str | None, str | None]:
        """(ws base, REST base); None means the venue's real endpoints."""
        get_venue(self.venue)  # fail early on a typo
        if self.exchange == "binance":
            return None, None
        if self.exchange != "embedded":
            raise ValueError(f"OBP_EXCHANGE must be 'embedded' or 'binance', got {self.exchange!r}")
        return f"ws://127.0.0.1:{self.sim_port}", f"http://127.0.0.1:{self.sim_port}"


def capture_target_from_env() -> CaptureTarget:
    return CaptureTarget(
        exchange=os.environ.get("OBP_EXCHANGE", "embedded"),
        venue=os.environ.get("OBP_VENUE", "binance-spot"),
        sim_port=int(os.environ.get("OBP_SIM_PORT", SIM_PORT_DEFAULT)),
        data_root=os.environ.get("OBP_DATA_ROOT", "./data"),
        s3_endpoint_url=os.environ.get("OBP_S3_ENDPOINT_URL", ""),
    )


def default_symbols() -> list[str]:
    return [s for s in os.environ.get("OBP_SYMBOLS", "BTCUSDT,ETHUSDT").split(",") if s]
