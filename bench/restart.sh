#!/usr/bin/env bash
# restart.sh — riding through an upstream restart (loopback, bounded).
#
# THREADS grpcio threads (one channel) call /echo.Echo/UnaryEcho with a 2 s deadline through a
# proxy for DURATION seconds; KILL_AT seconds in, the proxy's only upstream (echo_upstream) is
# killed with SIGKILL and started again on the same port DOWN seconds later. Counts the calls
# and the failures by status code, for each target in one run:
#
#   gateway        : the shipped binary `tonic-msgpack-gateway --config` with its defaults
#                    (retries: calls the upstream did not take are held until it is back, within
#                    their deadline and retries.hold_timeout)
#   haproxy_always : HAProxy mode http, proto h2 both sides, "http-reuse always",
#                    "timeout connect 1s", retries 3 (its default retry-on connect-failure)
#
# Calls in flight when the upstream dies may have been processed: neither proxy may retry them,
# so a handful of failures is the floor; the rest is how each proxy treats the outage.
# Every process started here is ended by PID; every wait is bounded.
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-restart]  THREADS [16]  DURATION [10]  KILL_AT [3]  DOWN [2]
#   REPEAT [1]  TARGETS ["gateway haproxy_always"]  PORT_BASE [50250]  SKIP_INSTALL [0]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-restart}
THREADS=${THREADS:-16}
DURATION=${DURATION:-10}
KILL_AT=${KILL_AT:-3}
DOWN=${DOWN:-2}
REPEAT=${REPEAT:-1}
TARGETS=${TARGETS:-"gateway haproxy_always"}
PORT_BASE=${PORT_BASE:-50250}
SKIP_INSTALL=${SKIP_INSTALL:-0}
ECHO_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 11))
ADMIN_PORT=$((PORT_BASE + 12))

RUN=$WORK/run
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN" "$RES"
log() { printf '[restart-bench] %s\n' "$*" >&2; }

ECHO_PID=""; PROXY_PID=""; CLIENT_PID=""
stop_pid() { # SIGTERM, then SIGKILL after 5 s
  local p=$1
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
cleanup() { local p; for p in $CLIENT_PID $PROXY_PID $ECHO_PID; do stop_pid "$p"; done; }
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- tools
if [ "$SKIP_INSTALL" != 1 ]; then
  if ! command -v haproxy >/dev/null; then
    log "apt-get install haproxy"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  fi
  if [ ! -x "$WORK/venv/bin/python" ]; then
    timeout 300 python3 -m venv "$WORK/venv"
  fi
  timeout 600 "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$ROOT/interop/python/requirements.txt"
fi
PY=$WORK/venv/bin/python

log "building echo_upstream and the gateway binary (release)"
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway --example echo_upstream)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ECHO_BIN=$TARGET_DIR/release/examples/echo_upstream
GATEWAY_BIN=$TARGET_DIR/release/tonic-msgpack-gateway

# ---------------------------------------------------------------- configs
cat > "$RUN/gateway.toml" <<EOF
listen = "127.0.0.1:$PROXY_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
grace_period = "1s"
[upstreams."echo.Echo"]
endpoints = ["http://127.0.0.1:$ECHO_PORT"]
EOF
cat > "$RUN/haproxy-always.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
frontend fe
  bind 127.0.0.1:$PROXY_PORT proto h2
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$ECHO_PORT proto h2
EOF
haproxy -c -q -f "$RUN/haproxy-always.cfg"

# ---------------------------------------------------------------- the client
cat > "$RUN/client.py" <<'PY'
"""THREADS threads call unary with a 2 s deadline for DURATION seconds; prints JSON."""
import collections, json, sys, threading, time
import grpc, msgpack

target, threads, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
channel = grpc.insecure_channel(target)
grpc.channel_ready_future(channel).result(timeout=10)
call = channel.unary_unary("/echo.Echo/UnaryEcho",
                           request_serializer=msgpack.packb, response_deserializer=msgpack.unpackb)
lock = threading.Lock()
ok, failed, failure_times = [0], collections.Counter(), []
start = time.monotonic()
end = start + duration

def worker():
    while time.monotonic() < end:
        try:
            call("0123456789abcdef0123456789abcdef", timeout=2.0)
            with lock:
                ok[0] += 1
        except grpc.RpcError as err:
            with lock:
                failed[err.code().name] += 1
                failure_times.append(time.monotonic() - start)

workers = [threading.Thread(target=worker) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join(timeout=duration + 10)
print(json.dumps({"ok": ok[0], "failed": dict(failed),
                  "first_failure_s": round(min(failure_times), 2) if failure_times else None,
                  "last_failure_s": round(max(failure_times), 2) if failure_times else None}))
PY

start_echo() {
  "$ECHO_BIN" "127.0.0.1:$ECHO_PORT" 1 >"$RUN/echo.log" 2>&1 &
  ECHO_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ECHO_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  log "echo_upstream did not start"; exit 1
}

start_proxy() { # $1 = target
  case $1 in
    gateway) "$GATEWAY_BIN" --config "$RUN/gateway.toml" >"$RUN/gateway.log" 2>&1 & ;;
    haproxy_always) haproxy -db -f "$RUN/haproxy-always.cfg" >"$RUN/haproxy.log" 2>&1 & ;;
    *) log "unknown target $1"; exit 1 ;;
  esac
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  log "$1 did not start"; exit 1
}

run_one() { # $1 = target, $2 = repeat index
  local target=$1 out=$RES/$1-$2.json
  start_echo
  start_proxy "$target"
  sleep 0.5
  timeout $((DURATION + 30)) "$PY" "$RUN/client.py" "127.0.0.1:$PROXY_PORT" "$THREADS" "$DURATION" >"$out" &
  CLIENT_PID=$!
  sleep "$KILL_AT"
  kill -9 "$ECHO_PID"; wait "$ECHO_PID" 2>/dev/null || true; ECHO_PID=""
  sleep "$DOWN"
  start_echo
  wait "$CLIENT_PID" || { log "$target: the client failed"; cat "$out" >&2; }
  CLIENT_PID=""
  stop_pid "$PROXY_PID"; PROXY_PID=""
  stop_pid "$ECHO_PID"; ECHO_PID=""
  log "$target #$2: $(cat "$out")"
}

for r in $(seq 1 "$REPEAT"); do
  for target in $TARGETS; do
    run_one "$target" "$r"
  done
done

# ---------------------------------------------------------------- table
"$PY" - "$RES" <<'PY'
import glob, json, os, sys
res = sys.argv[1]
print("| target | run | calls | failed | DEADLINE_EXCEEDED | UNAVAILABLE | other | failures from–to (s) |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for path in sorted(glob.glob(os.path.join(res, "*.json"))):
    name = os.path.basename(path)[:-5]
    target, run = name.rsplit("-", 1)
    with open(path) as f:
        r = json.load(f)
    failed = r["failed"]
    total_failed = sum(failed.values())
    de, un = failed.get("DEADLINE_EXCEEDED", 0), failed.get("UNAVAILABLE", 0)
    span = f'{r["first_failure_s"]}–{r["last_failure_s"]}' if total_failed else "–"
    print(f'| {target} | {run} | {r["ok"] + total_failed} | {total_failed} | {de} | {un} | '
          f'{total_failed - de - un} | {span} |')
PY
log "results in $RES"
