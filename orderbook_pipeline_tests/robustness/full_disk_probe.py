"""Run inside a private mount namespace by test_full_disk.py: a capture onto a tmpfs too small
for it, then the same data root with room again. Prints one JSON report on stdout."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import fastavro
import orjson

from orderbook_pipeline.storage.layout import TEMP_MARK
from orderbook_pipeline_tests.cli_capture import capture_command, last_summary, temporaries


def _capture(root: Path, ws_url: str, rest_url: str, duration: str) -> dict[str, object]:
    started = time.monotonic()
    args = ["--symbols", "BTCUSDT,ETHUSDT", "--duration", duration, "--depths", "5,20"]
    args += ["--lanes", "l2,diffs", "--file-seconds", "1"]
    proc = subprocess.run(
        capture_command("binance-spot", root, ws_url, rest_url, *args),
        capture_output=True,
        timeout=120,
    )
    return {
        "code": proc.returncode,
        "seconds": round(time.monotonic() - started, 2),
        "stderr": proc.stderr.decode()[-2000:],
        "summary": last_summary(proc.stdout),
    }


def _files(root: Path) -> dict[str, object]:
    finals = [p for p in root.rglob("*.avro") if TEMP_MARK not in p.name]
    unreadable = []
    for path in finals:
        try:
            with path.open("rb") as fo:
                list(fastavro.reader(fo))
        except Exception as exc:  # reported, the test decides
            unreadable.append(f"{path}: {exc!r}")
    left = [str(p) for p in temporaries(root)]
    return {"finals": len(finals), "unreadable": unreadable, "temporaries": left}


def main(root_text: str, ws_url: str, rest_url: str) -> None:
    root = Path(root_text)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)], check=True)
    full = _capture(root, ws_url, rest_url, "30")
    after_full = _files(root)
    subprocess.run(["mount", "-o", "remount,size=64m", str(root)], check=True)
    again = _capture(root, ws_url, rest_url, "2")
    report = {"full": full, "after_full": after_full, "again": again, "after": _files(root)}
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
