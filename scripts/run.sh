#!/usr/bin/env bash
# The main job on the embedded default: the bundled exchange on loopback, then the Dagster UI
# with the capture sensor running. Ctrl-C stops both. Set OBP_EXCHANGE=binance for the real venue.
set -euo pipefail
cd "$(dirname "$0")/.."

export OBP_EXCHANGE="${OBP_EXCHANGE:-embedded}"
export OBP_VENUE="${OBP_VENUE:-binance-spot}"
export OBP_SYMBOLS="${OBP_SYMBOLS:-BTCUSDT,ETHUSDT}"
export OBP_SIM_PORT="${OBP_SIM_PORT:-9443}"
# One folder holds everything: the lake (unless OBP_DATA_ROOT points at S3), marts.duckdb and
# Dagster's run history.
export OBP_HOME="${OBP_HOME:-$PWD/data}"
export DAGSTER_HOME="${DAGSTER_HOME:-$OBP_HOME/.dagster}"
UI_PORT="${OBP_UI_PORT:-3000}"

mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$OBP_EXCHANGE" = "embedded" ]; then
  .venv/bin/orderbook-pipeline simulate --venue "$OBP_VENUE" --port "$OBP_SIM_PORT" \
      --symbols "$OBP_SYMBOLS" &
  pids+=($!)
fi

echo "Dagster UI: http://127.0.0.1:${UI_PORT}  (data under ${OBP_DATA_ROOT:-$OBP_HOME})"
.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$UI_PORT" &
pids+=($!)
wait -n
