#!/usr/bin/env bash
# The main job on the embedded default: the bundled exchange on loopback (one per configured
# venue), then the Dagster UI with the capture sensor running. Ctrl-C (or SIGTERM) stops
# everything it started within 10 s.
# The configuration is ./orderbook_pipeline.yaml, or $OBP_CONFIG, plus OBP_* / OBP__* variables
# (set `exchange: binance` or OBP_EXCHANGE=binance for the real venues).
set -euo pipefail
# Started in the background by a script (`./scripts/run.sh &`), this inherits SIGINT ignored,
# and bash cannot trap a signal ignored at entry: start again with it restored.
if [ -z "${RUN_SH_SIGNALS_RESTORED:-}" ]; then
  RUN_SH_SIGNALS_RESTORED=1 exec env --default-signal=INT,QUIT "$0" "$@"
fi
unset RUN_SH_SIGNALS_RESTORED
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
# Dagster's instance settings (concurrency, run monitoring, retention), kept out of the
# repository's root: `dagster dev` started there announced that it would not use one there.
cp instance/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# Stopping (Ctrl-C, SIGTERM, SIGHUP, or either process exiting), everything gone within 10 s:
# - The runs in flight are first asked to cancel through the UI (orderbook_pipeline/cancel_runs.py).
# - Each process started below leads a session of its own, so a terminal's Ctrl-C reaches only
#   this script, which sends one SIGINT to each process group: Dagster and the exchange shut
#   down cleanly on one, while a second one interrupts their shutdown (and can hang the
#   exchange).
# - bash starts background jobs with SIGINT ignored, and `dagster dev` then ignores SIGTERM
#   too (it copies SIGINT's handler to SIGTERM): hence `env --default-signal`.
# - Whatever is left after GRACE_S gets SIGTERM, then SIGKILL, found by $mark: every process
#   started below passes it on (webserver, daemon, code servers, run and step workers), even
#   to those re-parented away from this script.
# Exit status: 128 + the signal's number (130 after SIGINT, 143 after SIGTERM); when a process
# stops on its own, its status (1 if it was 0).
mark="OBP_RUN_SESSION=$$.${SRANDOM:-$RANDOM}"
GRACE_S=7 # SIGINT, then SIGTERM after this, then SIGKILL 1 s later: all gone within 10 s
pids=()
start() { setsid env --default-signal=INT,QUIT "$mark" "$@" & pids+=($!); }
session_pids() { # the live processes carrying $mark (never this shell: it does not carry it)
  grep -lsFxz -- "$mark" /proc/[0-9]*/environ | sed -E 's#^/proc/([0-9]+)/environ$#\1#' || true
}
signal_session() { # $1: the signal; $2 (optional): say which processes get it
  local left
  left="$(session_pids)"
  [ -n "$left" ] || return 0
  if [ -n "${2:-}" ]; then
    echo "Still running after ${2}, sending SIG$1 to:" >&2
    ps -o pid=,args= -p "${left//$'\n'/,}" | cut -c1-120 >&2 || true
  fi
  # shellcheck disable=SC2086
  kill -s "$1" $left 2>/dev/null || true
}
stopping=0
stop() {
  [ "$stopping" = 0 ] || return 0
  stopping=1
  set +e # to the end, whatever fails (stderr gone with the terminal ...)
  echo "Stopping everything run.sh started (Ctrl-C again to force)..." >&2
  # Runs in flight asked to cancel first, so that the SIGINT ends them CANCELED, not FAILURE
  # (at most 3 s; captures under way are left to end on the SIGINT, as SUCCESS).
  .venv/bin/python -m orderbook_pipeline.cancel_runs "http://127.0.0.1:${UI_PORT}" || true
  local pid
  for pid in "${pids[@]}"; do kill -s INT -- "-$pid" 2>/dev/null || true; done
  t0="${EPOCHREALTIME//[!0-9]/}"
  wait_session $((GRACE_S * 1000))
  signal_session TERM "$GRACE_S s"
  wait_session $((GRACE_S * 1000 + 1000))
  signal_session KILL "$((GRACE_S + 1)) s"
  wait 2>/dev/null || true
}
wait_session() { # until no process carries $mark, or until $1 ms after the SIGINT
  while [ -n "$(session_pids)" ] && (((${EPOCHREALTIME//[!0-9]/} - t0) / 1000 < $1)); do
    sleep 0.2
  done
}
on_signal() { # $1: the exit status
  set +e
  if [ "$stopping" = 1 ]; then # a second Ctrl-C while stopping
    echo "Killing everything." >&2
    signal_session KILL
  else
    stop
  fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
trap 'on_signal 131' QUIT
trap stop EXIT

if [ "$exchange" = "embedded" ]; then
  start "$OBP" simulate --all-venues
fi

echo "Dagster UI: http://127.0.0.1:${UI_PORT}  (data under $("$OBP" config get data_root))"
# Dagster's services at WARNING by default: at INFO the daemon logs every sensor tick (two lines
# per sensor every 15-30 s), most of what the terminal showed; OBP_DAGSTER_LOG_LEVEL=info
# brings them back. Runs' own lines are instance/dagster.yaml's python_logs.
start .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$UI_PORT" \
  --log-level "${OBP_DAGSTER_LOG_LEVEL:-warning}"
# Whichever stops first (a crash, a port in use ...) stops the rest.
status=0
wait -n || status=$?
echo "A process stopped on its own (exit status $status); stopping the rest." >&2
stop
exit $((status == 0 ? 1 : status))
