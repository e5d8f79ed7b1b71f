"""`orderbook-pipeline capture ...` and `orderbook-pipeline simulate ...` (design.md, "Capture command")."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import orjson

from orderbook_pipeline.venues import VENUES, get_venue


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _depths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"depths must be integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderbook-pipeline", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("OBP_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    cap = sub.add_parser("capture", help="run one bounded capture burst")
    cap.add_argument("--venue", required=True, choices=sorted(VENUES))
    cap.add_argument(
        "--symbols", required=True, type=_csv, help="comma-separated, e.g. BTCUSDT,ETHUSDT"
    )
    cap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    cap.add_argument("--depths", type=_depths, default=(10, 20, 50), help="default 10,20,50")
    cap.add_argument(
        "--data-root",
        default=os.environ.get("OBP_DATA_ROOT", "./data"),
        help="local folder or s3://bucket/prefix (default ./data)",
    )
    cap.add_argument("--ws-url", help="websocket base URL (default: the venue's real endpoint)")
    cap.add_argument("--rest-url", help="REST base URL (default: the venue's real endpoint)")
    cap.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("OBP_S3_ENDPOINT_URL"),
        help="S3-compatible endpoint for s3:// data roots",
    )
    cap.add_argument(
        "--snapshot-limit",
        type=int,
        help="levels per snapshot (default: the deepest that syncs every book in about a minute "
        "of the weight budget, at least 1000)",
    )
    cap.add_argument(
        "--stale-after",
        type=float,
        default=10.0,
        help="seconds without a frame before a connection is replaced (default 10)",
    )
    cap.add_argument("--max-streams-per-connection", type=int)
    cap.add_argument(
        "--file-seconds",
        type=float,
        default=900.0,
        help="roll bronze files after this many seconds (default 900)",
    )
    cap.add_argument("--burst-id", help="default: UTC start time plus a random suffix")

    sim = sub.add_parser("simulate", help="run the bundled Binance-compatible exchange on loopback")
    sim.add_argument("--venue", default="binance-spot", choices=sorted(VENUES))
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9443)
    sim.add_argument("--symbols", type=_csv, default=["BTCUSDT", "ETHUSDT"])
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--interval-ms", type=int, default=100, help="one event per symbol every N ms")
    sim.add_argument("--levels", type=int, default=5000, help="book levels per side")
    return parser


def _capture(args: argparse.Namespace) -> int:
    from orderbook_pipeline.capture.burst import CaptureError, run_burst
    from orderbook_pipeline.capture.settings import CaptureSettings

    try:
        settings = CaptureSettings(
            venue=get_venue(args.venue),
            symbols=args.symbols,
            duration_s=args.duration,
            depths=args.depths,
            data_root=args.data_root,
            ws_url=args.ws_url,
            rest_url=args.rest_url,
            s3_endpoint_url=args.s3_endpoint_url,
            snapshot_limit=args.snapshot_limit,
            stale_after_s=args.stale_after,
            max_streams_per_connection=args.max_streams_per_connection,
            max_file_seconds=args.file_seconds,
            **({"burst_id": args.burst_id} if args.burst_id else {}),
        )
    except ValueError as exc:
        print(f"orderbook-pipeline capture: {exc}", file=sys.stderr)
        return 2
    try:
        metrics = asyncio.run(run_burst(settings, handle_signals=True))
    except CaptureError as exc:
        print(f"orderbook-pipeline capture: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(metrics.summary()).decode() + "\n")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from orderbook_pipeline.simulator.runner import serve_forever

    serve_forever(
        venue_name=args.venue,
        host=args.host,
        port=args.port,
        symbols=args.symbols,
        seed=args.seed,
        interval_ms=args.interval_ms,
        levels_per_side=args.levels,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _capture(args) if args.command == "capture" else _simulate(args)


if __name__ == "__main__":
    raise SystemExit(main())
