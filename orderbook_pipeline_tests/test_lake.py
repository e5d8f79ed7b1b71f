"""The analyst's path without Dagster: `capture`, `compact`, then `sql` (and lake.connect), on a
lake captured from the bundled exchange with every lane; the README's examples run here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
import yaml

from orderbook_pipeline.cli import main
from orderbook_pipeline.config import load_config
from orderbook_pipeline.lake import connect, tables
from orderbook_pipeline.simulator.runner import SimulatorThread
from orderbook_pipeline.storage.bronze_writer import BurstLock, live_bursts
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.store import LocalStore

from .capture.conftest import SIM_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
LANES = "l2,diffs,trades,agg_trades,book_ticker,depth_bands"


def _readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A configuration file whose data root holds 8 s of every lane, compacted by `compact`."""
    home = tmp_path_factory.mktemp("lake")
    with SimulatorThread(venue="binance-spot", symbols=list(SYMBOLS), **SIM_DEFAULTS) as sim:
        config = {
            "exchange": "embedded",
            "data_root": str(home / "data"),
            "duckdb_path": str(home / "marts.duckdb"),
            "venues": {
                "binance-spot": {
                    "symbols": list(SYMBOLS),
                    "lanes": LANES.split(","),
                    "depths": [10, 20],
                }
            },
        }
        path = home / "orderbook_pipeline.yaml"
        path.write_text(yaml.safe_dump(config))
        mp = pytest.MonkeyPatch()
        for key in [k for k in os.environ if k.startswith("OBP_")]:
            mp.delenv(key)
        mp.setenv("OBP_CONFIG", str(path))
        try:
            urls = ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url]
            assert main(["capture", "--venue", "binance-spot", "--duration", "8", *urls]) == 0
            yield path
        finally:
            mp.undo()


@pytest.fixture(scope="module")
def compacted(lake: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "orderbook_pipeline.cli", "compact", "--config", str(lake)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(lake),
    )
    return proc.returncode, proc.stdout


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBP_")}
    env["PYTHONPATH"] = str(ROOT)
    env["OBP_CONFIG"] = str(config)
    return env


def _sql(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderbook_pipeline.cli", "sql", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env=_env(config),
    )


def test_compact_builds_every_layer_of_every_hour(lake: Path, compacted: tuple[int, str]) -> None:
    code, out = compacted
    assert code == 0, out
    # One line per hour with bronze: both streams, rows, both marts, the checks.
    (line,) = [x for x in out.splitlines() if not x.startswith("  ")]
    assert re.match(r"\d{4}-\d\d-\d\d-\d\d:00: 2 streams, [\d,]+ silver rows; marts: ", line)
    assert "mart_l2_5s" in line and "mart_depth_bands_5s" in line
    config = load_config(str(lake))
    data = Path(config.data_root)
    for lane in LANES.split(","):
        assert list((data / "silver" / lane).rglob("part-*.parquet")), lane


def test_gold_parquet_holds_exactly_the_marts_rows(lake: Path, compacted: tuple[int, str]) -> None:
    config = load_config(str(lake))
    gold = Path(config.data_root) / "gold"
    with duckdb.connect(config.duckdb_path, read_only=True) as db:
        for table in ("mart_l2_5s", "mart_depth_bands_5s"):
            files = sorted((gold / table).rglob("data.parquet"))
            assert {f.parts[-4] for f in files} == {f"symbol={s}" for s in SYMBOLS}, table
            published = sorted(
                tuple(row.values()) for f in files for row in pq.read_table(f).to_pylist()
            )
            stored = sorted(db.sql(f"SELECT * FROM {table}").fetchall())
            assert stored and published == stored, table


def test_every_readme_sql_example_answers_with_rows(lake: Path, compacted: tuple[int, str]) -> None:
    examples = _readme_blocks("sql")
    assert len(examples) >= 6
    con = connect(load_config(str(lake)).store())
    try:
        for example in examples:
            rows = con.sql(example).fetchall()
            assert rows, example
            assert all(value is not None for value in rows[0]), example
    finally:
        con.close()


def test_the_readme_python_example_runs(lake: Path, compacted: tuple[int, str]) -> None:
    (example,) = [b for b in _readme_blocks("python") if "orderbook_pipeline.lake" in b]
    scope: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), scope)  # the snippet as a reader pastes it
    assert dict(scope["rows"]).keys() == set(SYMBOLS)


def test_sql_prints_a_table_csv_and_json_lines(lake: Path, compacted: tuple[int, str]) -> None:
    query = "SELECT symbol, count(*) AS n FROM trades GROUP BY ALL ORDER BY symbol"
    table = _sql(lake, query)
    assert table.returncode == 0, table.stderr
    assert "│ BTCUSDT │" in table.stdout and "│ ETHUSDT │" in table.stdout
    csv = _sql(lake, "--format", "csv", stdin=query)  # the query on standard input
    assert csv.returncode == 0, csv.stderr
    header, *rows = csv.stdout.splitlines()
    assert header == '"symbol","n"' and [r.split(",")[0] for r in rows] == [
        '"BTCUSDT"',
        '"ETHUSDT"',
    ]
    lines = _sql(lake, "--format", "jsonl", query).stdout.splitlines()
    counts = {row["symbol"]: row["n"] for row in map(orjson.loads, lines)}
    assert counts.keys() == set(SYMBOLS) and all(n > 0 for n in counts.values())
    assert [int(r.split(",")[1]) for r in rows] == [counts[s] for s in SYMBOLS]


def test_sql_runs_while_the_pipeline_holds_the_mart_database(
    lake: Path, compacted: tuple[int, str]
) -> None:
    """The point of the gold Parquet: a writer holding marts.duckdb does not stop analysts."""
    config = load_config(str(lake))
    with duckdb.connect(config.duckdb_path) as writer:
        writer.execute("CHECKPOINT")
        done = _sql(lake, "--format", "csv", "SELECT count(*) FROM mart_l2_5s")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.splitlines()[1]) > 0


def test_a_bad_query_exits_1_naming_the_problem(lake: Path, compacted: tuple[int, str]) -> None:
    done = _sql(lake, "SELECT * FROM no_such_lane")
    assert done.returncode == 1
    assert "orderbook-pipeline sql:" in done.stderr and "no_such_lane" in done.stderr


def test_an_empty_lake_has_every_table_with_no_rows(tmp_path: Path) -> None:
    con = connect(LocalStore(str(tmp_path)))
    try:
        for name in tables():
            assert con.sql(f"SELECT count(*) FROM {name}").fetchall() == [(0,)], name
        # The marts keep their own columns when empty.
        assert "realized_vol_bps" in con.sql("SELECT * FROM mart_l2_5s").columns
    finally:
        con.close()


def test_the_same_tables_on_s3(
    lake: Path, compacted: tuple[int, str], s3_root: str, s3_endpoint: str
) -> None:
    import boto3

    data = Path(load_config(str(lake)).data_root)
    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for layer in ("silver", "gold"):
        for path in (data / layer).rglob("*.parquet"):
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(data)}")
    client.close()
    query = "SELECT symbol, depth, count(*), max(event_ts) FROM l2 GROUP BY ALL ORDER BY ALL"
    local, remote = (
        connect(LocalStore(str(data))),
        connect(open_store(s3_root, s3_endpoint_url=s3_endpoint)),
    )
    try:
        assert remote.sql(query).fetchall() == local.sql(query).fetchall() != []
        marts = "SELECT * FROM mart_l2_5s ORDER BY ALL"
        assert remote.sql(marts).fetchall() == local.sql(marts).fetchall()
    finally:
        local.close()
        remote.close()


def test_a_live_burst_lock_is_seen_and_compact_then_waits_for_settled_rows(
    lake: Path, compacted: tuple[int, str]
) -> None:
    store = load_config(str(lake)).store()
    lock = BurstLock(store.lock_path("20261203T180000Z-abcdef"))
    lock.acquire()
    try:
        holder = subprocess.run(
            [
                sys.executable,
                "-c",
                "from orderbook_pipeline.config import load_config;"
                "from orderbook_pipeline.storage.bronze_writer import live_bursts;"
                "print(live_bursts(load_config().store()))",
            ],
            capture_output=True,
            text=True,
            env=_env(lake),
            check=True,
        )
        assert "20261203T180000Z-abcdef" in holder.stdout  # another process sees it held
        done = subprocess.run(
            [sys.executable, "-m", "orderbook_pipeline.cli", "compact"],
            capture_output=True,
            text=True,
            timeout=300,
            env=_env(lake),
        )
        assert done.returncode == 0, done.stderr
        assert "bursts still writing: 20261203T180000Z-abcdef" in done.stdout
    finally:
        lock.release()
    assert live_bursts(store) == []
