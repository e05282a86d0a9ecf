#!/usr/bin/env bash
# Cross-language interop suite for tonic-msgpack (wire format v1).
#
#   bash interop/run.sh          # from anywhere
#
# 1. installs the Python client deps into interop/python/.venv and the Node ones
#    with `npm ci` (from the committed lockfile);
# 2. builds example-app and starts `example-app serve` (gateway + both services);
# 3. runs the Python and Node clients against the gateway and against the
#    services' own port;
# 4. starts the Python grpcio Greeter server and runs
#    `example-app check-greeter http://HOST:PORT` against it (the generated Rust
#    client calling a non-Rust server);
# 5. prints one line per suite and `interop: N passed, N failed`; exits non-zero
#    if any suite failed. Everything it started is stopped on exit.
#
# Environment (all optional):
#   INTEROP_HOST            127.0.0.1
#   INTEROP_GATEWAY_PORT    50051   gateway (`serve --listen`)
#   INTEROP_SERVICES_PORT   50052   Greeter + Calculator directly (`serve --services-listen`)
#   INTEROP_GREETER_PORT    50060   the Python Greeter server (reverse direction)
#   INTEROP_READY_TIMEOUT   60      seconds to wait for a server to listen
#   INTEROP_CALL_TIMEOUT    120     seconds for each client run / check-greeter
#   INTEROP_APP_BIN         path to an already built example-app binary (skips cargo build)
#   INTEROP_EXTERNAL_SERVE  1 = do not start `serve`; use the one already listening
#   INTEROP_SKIP_INSTALL    1 = reuse the existing venv and node_modules as they are
#   PYTHON                  python3  interpreter used to create the venv
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

HOST="${INTEROP_HOST:-127.0.0.1}"
GATEWAY_PORT="${INTEROP_GATEWAY_PORT:-50051}"
SERVICES_PORT="${INTEROP_SERVICES_PORT:-50052}"
GREETER_PORT="${INTEROP_GREETER_PORT:-50060}"
READY_TIMEOUT="${INTEROP_READY_TIMEOUT:-60}"
CALL_TIMEOUT="${INTEROP_CALL_TIMEOUT:-120}"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/python/.venv"
VPY="$VENV/bin/python"

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tonic-msgpack-interop.XXXXXX")"
PIDS=()

log() { printf 'interop: %s\n' "$*"; }

cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    # bounded: give each process 5 s to exit, then SIGKILL
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ $status -eq 0 ]]; then
    rm -rf "$LOG_DIR"
  else
    log "server logs kept in $LOG_DIR"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port HOST PORT PID LOGFILE WHAT: poll until HOST:PORT accepts, bounded by
# READY_TIMEOUT; fail early if the process died.
wait_port() {
  local host=$1 port=$2 pid=$3 logfile=$4 what=$5
  local deadline=$((SECONDS + READY_TIMEOUT))
  until port_open "$host" "$port"; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited before listening on $host:$port; its log:"
      tail -n 50 "$logfile" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$what is not listening on $host:$port after ${READY_TIMEOUT}s; its log:"
      [[ -n "$logfile" ]] && { tail -n 50 "$logfile" >&2 || true; }
      return 1
    fi
    sleep 0.2
  done
}

require_free() {
  if port_open "$HOST" "$1"; then
    log "port $HOST:$1 is already in use (a stale server?); set $2 to use another port"
    exit 1
  fi
}

# ------------------------------------------------------------------ install

if [[ "${INTEROP_SKIP_INSTALL:-0}" != 1 ]]; then
  log "python: venv + requirements"
  [[ -x "$VPY" ]] || timeout 300 "$PYTHON" -m venv "$VENV"
  timeout 600 "$VPY" -m pip install --quiet --disable-pip-version-check -r "$HERE/python/requirements.txt"
  log "node: npm ci"
  (cd "$HERE/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
fi

# ------------------------------------------------------------------ the Rust side

if [[ -n "${INTEROP_APP_BIN:-}" ]]; then
  APP="$INTEROP_APP_BIN"
else
  log "cargo build -p example-app"
  timeout 1800 cargo build -p example-app
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    "$VPY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  APP="$TARGET_DIR/debug/example-app"
fi
[[ -x "$APP" ]] || { log "no example-app binary at $APP"; exit 1; }

if [[ "${INTEROP_EXTERNAL_SERVE:-0}" != 1 ]]; then
  require_free "$GATEWAY_PORT" INTEROP_GATEWAY_PORT
  require_free "$SERVICES_PORT" INTEROP_SERVICES_PORT
  log "starting example-app serve --listen $HOST:$GATEWAY_PORT --services-listen $HOST:$SERVICES_PORT"
  "$APP" serve --listen "$HOST:$GATEWAY_PORT" --services-listen "$HOST:$SERVICES_PORT" \
    >"$LOG_DIR/serve.log" 2>&1 </dev/null &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  wait_port "$HOST" "$SERVICES_PORT" "$SERVE_PID" "$LOG_DIR/serve.log" "example-app serve"
  wait_port "$HOST" "$GATEWAY_PORT" "$SERVE_PID" "$LOG_DIR/serve.log" "example-app serve"
else
  wait_port "$HOST" "$SERVICES_PORT" "" "" "the external serve"
  wait_port "$HOST" "$GATEWAY_PORT" "" "" "the external serve"
fi

# ------------------------------------------------------------------ suites

PASSED=0
FAILED=0
RESULTS=()

suite() {
  local name=$1
  shift
  log "== $name"
  local rc=0
  timeout "$CALL_TIMEOUT" "$@" </dev/null || rc=$?
  if [[ $rc -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    RESULTS+=("ok   $name")
  else
    FAILED=$((FAILED + 1))
    if [[ $rc -eq 124 ]]; then
      RESULTS+=("FAIL $name (timed out after ${CALL_TIMEOUT}s)")
    else
      RESULTS+=("FAIL $name (exit $rc)")
    fi
  fi
}

suite "python client -> gateway $HOST:$GATEWAY_PORT" \
  "$VPY" "$HERE/python/client.py" "$HOST:$GATEWAY_PORT" --label python-gateway
suite "python client -> services $HOST:$SERVICES_PORT" \
  "$VPY" "$HERE/python/client.py" "$HOST:$SERVICES_PORT" --label python-direct
suite "node client -> gateway $HOST:$GATEWAY_PORT" \
  node "$HERE/node/client.js" "$HOST:$GATEWAY_PORT" --label node-gateway
suite "node client -> services $HOST:$SERVICES_PORT" \
  node "$HERE/node/client.js" "$HOST:$SERVICES_PORT" --label node-direct

# reverse direction: the generated Rust client against a Python grpcio server
require_free "$GREETER_PORT" INTEROP_GREETER_PORT
log "starting python greeter_server.py on $HOST:$GREETER_PORT"
"$VPY" "$HERE/python/greeter_server.py" "$GREETER_PORT" --host "$HOST" \
  >"$LOG_DIR/greeter_server.log" 2>&1 </dev/null &
GREETER_PID=$!
PIDS+=("$GREETER_PID")
wait_port "$HOST" "$GREETER_PORT" "$GREETER_PID" "$LOG_DIR/greeter_server.log" "greeter_server.py"
suite "rust check-greeter -> python server $HOST:$GREETER_PORT" \
  "$APP" check-greeter "http://$HOST:$GREETER_PORT"

# ------------------------------------------------------------------ summary

log "results:"
for r in "${RESULTS[@]}"; do
  printf '  %s\n' "$r"
done
echo "interop: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
