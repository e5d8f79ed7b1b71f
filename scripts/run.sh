#!/usr/bin/env bash
# The main job on the embedded default: the bundled exchange on loopback (one per configured
# venue), then the Dagster UI with the capture sensor running. Ctrl-C stops everything.
# The configuration is ./orderbook_pipeline.yaml, or $OBP_CONFIG, plus OBP_* / OBP__* variables
# (set `exchange: binance` or OBP_EXCHANGE=binance for the real venues).
set -euo pipefail
# A relative $OBP_CONFIG names a file from where this was started, not from the repository.
if [ -n "${OBP_CONFIG:-}" ]; then
  OBP_CONFIG="$(realpath -m -- "$OBP_CONFIG")"
fi
cd "$(dirname "$0")/.."

# Dagster loads .env (overriding the shell); load it here too so that the exchanges started
# below serve exactly the venues Dagster will capture.
if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
# One folder holds everything: the lake (unless data_root points at S3), marts.duckdb and
# Dagster's run history.
export OBP_HOME="${OBP_HOME:-$PWD/data}"
export DAGSTER_HOME="${DAGSTER_HOME:-$OBP_HOME/.dagster}"
# An absolute path, so every Dagster process reads the same file whatever its directory (a
# relative one from .env is relative to the repository).
if [ -n "${OBP_CONFIG:-}" ]; then
  OBP_CONFIG="$(realpath -m -- "$OBP_CONFIG")"
  export OBP_CONFIG
elif [ -f orderbook_pipeline.yaml ]; then
  export OBP_CONFIG="$PWD/orderbook_pipeline.yaml"
fi
UI_PORT="${OBP_UI_PORT:-3000}"
OBP=.venv/bin/orderbook-pipeline

# Refuse an invalid configuration now, with the field named, rather than in the UI later.
if ! exchange="$("$OBP" config get exchange)"; then
  exit 2
fi

mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$exchange" = "embedded" ]; then
  "$OBP" simulate --all-venues &
  pids+=($!)
fi

echo "Dagster UI: http://127.0.0.1:${UI_PORT}  (data under $("$OBP" config get data_root))"
.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$UI_PORT" &
pids+=($!)
wait -n
