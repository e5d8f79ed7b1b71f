"""`orderbook-pipeline capture|compact|sql|simulate|config ...` (README.md of the repository).

Every command reads the same configuration as the Dagster definitions (orderbook_pipeline.yaml,
the environment, `--config`, `--set`; see config/). Explicit options override it for the run.
An invalid configuration exits with code 2 and a message naming the field. A capture that could
not keep its data safe exits 1; one that captured nothing of a requested symbol exits 3 (after
its summary) unless `--allow-empty-symbols` or `capture.allow_empty_symbols` accepts that.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson
import yaml  # type: ignore[import-untyped]

from orderbook_pipeline.capture.settings import CaptureSettings
from orderbook_pipeline.config import (
    SIM_HOST,
    ConfigError,
    PipelineConfig,
    Problem,
    load_config,
    log_level,
)
from orderbook_pipeline.log_redaction import install_redaction
from orderbook_pipeline.venues import VENUES, normalised_symbols

if TYPE_CHECKING:  # the refresh loads Dagster and pyarrow: only `compact` imports it
    from orderbook_pipeline.refresh.hour import HourReport

EXIT_EMPTY_SYMBOLS = 3

# Explicit capture options and the configuration field each one overrides for the run
# ({venue}: the section of --venue).
CAPTURE_OPTIONS = (
    ("--symbols", "venues.{venue}.symbols", "comma-separated, e.g. BTCUSDT,ETHUSDT"),
    ("--depths", "venues.{venue}.depths", "L2 depths, e.g. 10,20,50"),
    ("--lanes", "venues.{venue}.lanes", "lanes to write, e.g. l2,diffs,trades"),
    ("--partial-depth-levels", "venues.{venue}.partial_depth_levels", "5, 10 or 20"),
    ("--band-pcts", "venues.{venue}.band_pcts", "depth bands, % from mid, e.g. 0.1,1"),
    ("--deep-snapshot-interval", "venues.{venue}.deep_snapshot_interval_s", "seconds"),
    ("--deep-snapshot-limit", "venues.{venue}.deep_snapshot_limit", "levels"),
    (
        "--snapshot-limit",
        "venues.{venue}.snapshot_limit",
        "levels per snapshot (default: the deepest that syncs every book in about a minute "
        "of the weight budget, at least 1000)",
    ),
    ("--duration", "capture.burst_seconds", "seconds (default: capture.burst_seconds)"),
    ("--file-seconds", "capture.file_seconds", "roll bronze files after this many seconds"),
    ("--data-root", "data_root", "local folder or s3://bucket/prefix"),
    ("--s3-endpoint-url", "s3_endpoint_url", "S3-compatible endpoint for s3:// data roots"),
    ("--exchange", "exchange", "embedded (the bundled exchange on loopback) or binance"),
)


def _dest(option: str) -> str:
    return option.removeprefix("--").replace("-", "_")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $OBP_CONFIG, else ./orderbook_pipeline.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override one field, e.g. --set venues.binance-spot.depths=10,20 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderbook-pipeline", description=__doc__)
    parser.add_argument("--log-level", default=log_level())
    sub = parser.add_subparsers(dest="command", required=True)

    cap = sub.add_parser("capture", help="run one bounded capture burst")
    _add_config_options(cap)
    cap.add_argument(
        "--venue",
        choices=sorted(VENUES),
        help="the venue section to capture (default: the only one)",
    )
    for option, _path, help_text in CAPTURE_OPTIONS:
        cap.add_argument(option, help=help_text.replace("%", "%%"))  # argparse formats help
    cap.add_argument("--ws-url", help="websocket base URL (default: from `exchange`)")
    cap.add_argument("--rest-url", help="REST base URL (default: from `exchange`)")
    cap.add_argument(
        "--stale-after",
        type=float,
        help="seconds without a frame before a connection is replaced (default "
        f"{CaptureSettings.stale_after_s:g})",
    )
    cap.add_argument("--max-streams-per-connection", type=int)
    cap.add_argument("--burst-id", help="default: UTC start time plus a random suffix")
    cap.add_argument(
        "--progress",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a progress line this often: rewritten in place on a terminal, logged otherwise; "
        "0 for none (default 30)",
    )
    cap.add_argument(
        "--allow-empty-symbols",
        action="store_true",
        default=None,
        help="exit 0 even if a requested symbol got nothing (capture.allow_empty_symbols)",
    )

    sim = sub.add_parser("simulate", help="run the bundled Binance-compatible exchange on loopback")
    _add_config_options(sim)
    which = sim.add_mutually_exclusive_group()
    which.add_argument(
        "--venue", choices=sorted(VENUES), help="default: the configuration's first venue"
    )
    which.add_argument(
        "--all-venues",
        action="store_true",
        help="one exchange per configured venue, each on its sim_port, in this process",
    )
    sim.add_argument("--host", default=SIM_HOST)  # where `exchange: embedded` connects
    sim.add_argument("--port", type=int, help="default: the venue's sim_port")
    sim.add_argument("--symbols", help="default: the venue's configured symbols")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--interval-ms", type=int, default=100, help="one event per symbol every N ms")
    sim.add_argument("--levels", type=int, default=5000, help="book levels per side")

    compact = sub.add_parser(
        "compact",
        help="build silver, gap windows, checks and marts from the bronze of CLI captures "
        "(what a Dagster refresh run does, without Dagster)",
    )
    _add_config_options(compact)
    compact.add_argument("--data-root", help="local folder or s3://bucket/prefix")
    compact.add_argument("--s3-endpoint-url")
    compact.add_argument("--duckdb-path", help="the mart database (default: duckdb_path)")
    compact.add_argument(
        "--hours",
        help="UTC hours, comma-separated, e.g. 2026-12-03-18:00 (default: every hour with bronze)",
    )
    compact.add_argument(
        "--until",
        choices=("auto", "now", "settled"),
        default="auto",
        help="how far into the current hour: everything (now), what has settled as a Dagster "
        "refresh would, or auto: now unless a capture on this machine is still writing",
    )

    sql = sub.add_parser(
        "sql",
        help="query the lake: silver lanes, gap windows and marts as DuckDB tables, read from "
        "Parquet while the pipeline runs",
    )
    _add_config_options(sql)
    sql.add_argument("query", nargs="?", help="SQL; default: read from standard input")
    sql.add_argument("--data-root", help="local folder or s3://bucket/prefix")
    sql.add_argument("--s3-endpoint-url")
    sql.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown as a table")

    cfg = sub.add_parser("config", help="print the effective configuration (validated)")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    show = cfg_sub.add_parser("show", help="the whole configuration")
    _add_config_options(show)
    show.add_argument("--format", choices=("yaml", "json"), default="yaml")
    get = cfg_sub.add_parser("get", help="one field: lists comma-separated, sections as JSON")
    _add_config_options(get)
    get.add_argument("path", help="dotted path, e.g. exchange or venues.binance-spot.symbols")
    return parser


# --------------------------------------------------------------------- capture
def _capture_config(args: argparse.Namespace) -> tuple[PipelineConfig, str]:
    venue = args.venue
    if venue is None:
        names = list(load_config(args.config, sets=args.sets).venues)
        if len(names) != 1:
            problem = Problem("venues", f"--venue is required to pick one of {names}", "--venue")
            raise ConfigError([problem])
        venue = names[0]
    flags = [
        (path.format(venue=venue), value, option)
        for option, path, _help in CAPTURE_OPTIONS
        if (value := getattr(args, _dest(option))) is not None
    ]
    if getattr(args, "allow_empty_symbols", None):
        flags.append(("capture.allow_empty_symbols", "true", "--allow-empty-symbols"))
    return load_config(args.config, sets=args.sets, flags=flags, ensure_venue=venue), venue


def capture_settings(args: argparse.Namespace) -> CaptureSettings:
    """The burst the capture command runs: the configuration, then its explicit options."""
    config, venue = _capture_config(args)
    options = {
        "stale_after_s": args.stale_after,
        "max_streams_per_connection": args.max_streams_per_connection,
        "ws_url": args.ws_url,
        "rest_url": args.rest_url,
        "burst_id": args.burst_id,
        "progress_interval_s": args.progress,
    }
    extra = {name: value for name, value in options.items() if value is not None}
    return config.capture_settings(venue, **extra)


def _capture(args: argparse.Namespace) -> int:
    import asyncio

    from orderbook_pipeline.capture.burst import CaptureError, run_burst

    try:
        settings = capture_settings(args)
    except ValueError as exc:  # ConfigError included
        print(f"orderbook-pipeline capture: {exc}", file=sys.stderr)
        return 2
    try:
        metrics = asyncio.run(run_burst(settings, handle_signals=True))
    except CaptureError as exc:
        print(f"orderbook-pipeline capture: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(metrics.summary()).decode() + "\n")
    if metrics.empty_symbols and not settings.allow_empty_symbols:
        print(
            f"orderbook-pipeline capture: captured nothing of {len(metrics.empty_symbols)} "
            f"requested symbol(s): {', '.join(metrics.empty_symbols[:20])} (see the summary's "
            "rest_errors and unknown_symbols; --allow-empty-symbols accepts this)",
            file=sys.stderr,
        )
        return EXIT_EMPTY_SYMBOLS
    return 0


# --------------------------------------------------------------------- simulate
def simulated_venues(args: argparse.Namespace) -> list[tuple[str, int, list[str]]]:
    """(venue, port, symbols) of each exchange to serve."""
    config = load_config(args.config, sets=args.sets, ensure_venue=args.venue)
    if args.all_venues:
        return [(n, s.sim_port or 0, s.symbols) for n, s in config.venues.items()]
    venue = args.venue or next(iter(config.venues))
    section = config.venues[venue]
    symbols = normalised_symbols((args.symbols or "").split(","))
    port = args.port if args.port is not None else section.sim_port or 0
    return [(venue, port, symbols or section.symbols)]


def _simulate(args: argparse.Namespace) -> int:
    try:
        exchanges = simulated_venues(args)
    except ValueError as exc:
        print(f"orderbook-pipeline simulate: {exc}", file=sys.stderr)
        return 2
    common = {"seed": args.seed, "interval_ms": args.interval_ms, "levels_per_side": args.levels}
    if not args.all_venues:
        from orderbook_pipeline.simulator.runner import serve_forever

        ((venue, port, symbols),) = exchanges
        serve_forever(venue_name=venue, host=args.host, port=port, symbols=symbols, **common)
        return 0
    from orderbook_pipeline.simulator.runner import quiet_request_logs

    quiet_request_logs()
    _serve_all(exchanges, args.host, common)
    return 0


def _serve_all(exchanges: list[tuple[str, int, list[str]]], host: str, common: Any) -> None:
    """Every venue's exchange on its own loop thread until SIGINT or SIGTERM."""
    import signal
    import threading
    from contextlib import ExitStack

    from orderbook_pipeline.simulator.runner import SimulatorThread

    log = logging.getLogger("orderbook_pipeline.simulator")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ExitStack() as stack:
        for venue, port, symbols in exchanges:
            sim = SimulatorThread(venue=venue, symbols=symbols, host=host, port=port, **common)
            stack.enter_context(sim)
            log.info("simulated %s on ws/http://%s:%d: %s", venue, host, sim.port, symbols)
        # A timed wait: an untimed Event.wait() can miss a second signal arriving right after
        # the first one (seen: SIGINT then SIGTERM hung the process for good).
        while not stop.wait(0.5):
            pass


# --------------------------------------------------------------------- config
def _config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, sets=args.sets)
    except ConfigError as exc:
        print(f"orderbook-pipeline config: {exc}", file=sys.stderr)
        return 2
    data: Any = config.model_dump(mode="json")
    if args.action == "show":
        if args.format == "json":
            sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
        return 0
    for part in args.path.split("."):
        if not isinstance(data, dict) or part not in data:
            print(f"orderbook-pipeline config: no field {args.path!r}", file=sys.stderr)
            return 2
        data = data[part]
    if isinstance(data, dict):
        text = orjson.dumps(data).decode()
    elif isinstance(data, list):
        text = ",".join(str(v) for v in data)
    else:
        text = "" if data is None else str(data)
    sys.stdout.write(text + "\n")
    return 0


# --------------------------------------------------------------------- compact, sql
def _lake_config(args: argparse.Namespace, command: str) -> PipelineConfig | None:
    # The lake's options as the capture's table maps them, and the mart database's.
    lake = [(o, p) for o, p, _help in CAPTURE_OPTIONS if o in ("--data-root", "--s3-endpoint-url")]
    flags = [
        (path, getattr(args, _dest(option)), option)
        for option, path in (*lake, ("--duckdb-path", "duckdb_path"))
        if getattr(args, _dest(option), None) is not None
    ]
    try:
        return load_config(args.config, sets=args.sets, flags=flags)
    except ConfigError as exc:
        print(f"orderbook-pipeline {command}: {exc}", file=sys.stderr)
        return None


def _compact(args: argparse.Namespace) -> int:
    from orderbook_pipeline.partitions import hour_key, hour_start_of
    from orderbook_pipeline.refresh.hour import stop_on_signals
    from orderbook_pipeline.refresh.offline import bronze_hours, compact_hours
    from orderbook_pipeline.storage.bronze_writer import live_bursts

    config = _lake_config(args, "compact")
    if config is None:
        return 2
    store = config.store()
    try:
        hours = (
            [hour_start_of(h.strip()) for h in args.hours.split(",") if h.strip()]
            if args.hours
            else bronze_hours(store, config)
        )
    except ValueError as exc:
        print(f"orderbook-pipeline compact: --hours: {exc}", file=sys.stderr)
        return 2
    if not hours:
        print(f"orderbook-pipeline compact: no bronze under {config.data_root}", file=sys.stderr)
        return 0
    live = live_bursts(store) if args.until == "auto" else []
    settle = args.until == "settled" or bool(live)
    if live:
        print(f"bursts still writing: {', '.join(live)}; the current hour up to what has settled")
    failed = 0
    with stop_on_signals() as stop:
        reports = compact_hours(
            store, config, hours, config.duckdb_path, stop.is_set, settle=settle
        )
        for report in reports:
            print(hour_report_line(hour_key(report.scope.hour_start_us), report))
            for stream in report.streams:
                for key, outcome in sorted(stream.checks.items()):
                    if not outcome.passed:
                        print(f"  check {key[1]} failed, {stream.stream}: {outcome.summary}")
                for stage, error in stream.errors.items():
                    print(f"  {stream.stream}: {stage} failed: {error}", file=sys.stderr)
            failed += len(report.failed_streams())
    if stop.is_set():
        print("orderbook-pipeline compact: stopped; run it again to finish", file=sys.stderr)
        return 130
    return 1 if failed else 0


def hour_report_line(hour: str, report: HourReport) -> str:
    """One hour's refresh in a line: streams, rows, marts, checks."""
    rows = sum(r.rows_total for s in report.streams for r in s.lanes.values())
    marts: dict[str, int] = {}
    for stream in report.streams:
        for table, built in stream.marts.items():
            marts[table] = marts.get(table, 0) + built.rows
    outcomes = [o for s in report.streams for o in s.checks.values()]
    passed = sum(o.passed for o in outcomes)
    mart_text = ", ".join(f"{t} {n:,}" for t, n in marts.items()) or "none"
    return (
        f"{hour}: {len(report.streams)} streams, {rows:,} silver rows; marts: {mart_text}; "
        f"checks: {passed} of {len(outcomes)} passed ({report.seconds:.1f} s)"
    )


def _sql(args: argparse.Namespace) -> int:
    import duckdb
    from pyarrow import ArrowException

    from orderbook_pipeline.lake import connect, write_result

    config = _lake_config(args, "sql")
    if config is None:
        return 2
    query = args.query if args.query is not None else sys.stdin.read()
    try:
        conn = connect(config.store())
        try:
            write_result(conn.sql(query), args.format, args.max_rows)
        finally:
            conn.close()
    except (duckdb.Error, OSError, ArrowException) as exc:  # a bad query, an unreadable lake
        print(f"orderbook-pipeline sql: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # At DEBUG botocore logs each signed request (access key id, session token, signature);
    # redaction applies at every level, so an INFO or WARNING line with a URL is covered too.
    install_redaction()
    # httpx logs every request at INFO (deep snapshots, clock checks): the capture's own log
    # says what matters; --log-level DEBUG shows them again.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    commands = {
        "capture": _capture,
        "simulate": _simulate,
        "config": _config,
        "compact": _compact,
        "sql": _sql,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
