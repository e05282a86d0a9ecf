#!/usr/bin/env bash
# gateway-instructions.sh — instructions the shipped gateway binary spends per proxied unary
# call, counted by callgrind (deterministic, so usable on a busy machine where wall time swings
# 1.5-2x between runs), with tracing and the access log off and on:
#
#   plain : the defaults (both off)
#   trace : [tracing] at 100% sampling, OTLP/gRPC to a local receiver (the otlp_sink example)
#   log   : [access_log] to a file
#   both  : both
#   haproxy : the strongest peer, HAProxy `http-reuse always` (proto h2 both sides, nbthread 1,
#             as gateway.sh runs it), counted the same way: a same-run anchor in instructions
#             (opt-in: CONFIGS="plain haproxy")
#
# Each configuration serves h2load (-c 50 -m 10, the c50m10 scenario of gateway.sh) twice on a
# fresh gateway under callgrind: N_SMALL calls, then N_LARGE; instructions per call =
# (Ir(N_LARGE) - Ir(N_SMALL)) / (N_LARGE - N_SMALL), so start-up and shutdown cancel out. The
# count covers every thread of the gateway (the access log's writer, the exporter's task) and
# none of the kernel's work (syscalls), which instruction counts cannot see.
#
# Env knobs: N_SMALL [2000] N_LARGE [12000] CONFIGS ["plain trace log both"]
#            GATEWAY_BIN [the workspace's release build]  PORT_BASE [47100]
#            CLIENTS [50] STREAMS [10]: h2load -c/-m (CLIENTS=500 STREAMS=1 is gateway.sh's
#            c500m1)
#            PIN []: CPUs for the counted process (e.g. PIN=1 runs it as gateway.sh does, on
#            one CPU, where the gateway picks its current-thread runtime; empty: all CPUs and
#            the multi-thread runtime, as the earlier tables were counted)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_SMALL=${N_SMALL:-2000}
N_LARGE=${N_LARGE:-12000}
CONFIGS=${CONFIGS:-"plain trace log both"}
PORT_BASE=${PORT_BASE:-47100}
CLIENTS=${CLIENTS:-50}
STREAMS=${STREAMS:-10}
PIN=${PIN:-}
ECHO_PORT=$((PORT_BASE + 1))
GATEWAY_PORT=$((PORT_BASE + 31))
HAPROXY_PORT=$((PORT_BASE + 21))
ADMIN_PORT=$((PORT_BASE + 41))
SINK_PORT=$((PORT_BASE + 61))

TOOLS="valgrind h2load"
case " $CONFIGS " in *" haproxy "*) TOOLS="$TOOLS haproxy" ;; esac
[ -n "$PIN" ] && TOOLS="$TOOLS taskset"
for tool in $TOOLS; do
  command -v "$tool" >/dev/null || {
    echo "$tool is needed (apt-get install valgrind nghttp2-client haproxy)" >&2
    exit 1
  }
done
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway \
  --example echo_upstream --example otlp_sink)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
GATEWAY_BIN=${GATEWAY_BIN:-$TARGET_DIR/release/tonic-msgpack-gateway}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# One gRPC frame: a MessagePack str of 32 bytes, as gateway.sh sends.
python3 - "$WORK/body.bin" <<'PY'
import struct, sys
msg = b"0123456789abcdef0123456789abcdef"
mp = b"\xd9" + bytes([len(msg)]) + msg
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(mp)) + mp)
PY
cat > "$WORK/plain.toml" <<EOF
listen = "127.0.0.1:$GATEWAY_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
grace_period = "1s"
[upstreams."echo.Echo"]
endpoints = ["http://127.0.0.1:$ECHO_PORT"]
EOF
TRACING="[tracing]
enabled = true
otlp_endpoint = \"http://127.0.0.1:$SINK_PORT\"
sampling_ratio = 1.0"
ACCESS_LOG="[access_log]
enabled = true
path = \"$WORK/access.log\""
printf '%s\n%s\n' "$(cat "$WORK/plain.toml")" "$TRACING" > "$WORK/trace.toml"
printf '%s\n%s\n' "$(cat "$WORK/plain.toml")" "$ACCESS_LOG" > "$WORK/log.toml"
printf '%s\n%s\n%s\n' "$(cat "$WORK/plain.toml")" "$TRACING" "$ACCESS_LOG" > "$WORK/both.toml"
# shellcheck source=bench/haproxy-config.sh
. "$ROOT/bench/haproxy-config.sh"
haproxy_config "$HAPROXY_PORT" "$ECHO_PORT" "http-reuse always" > "$WORK/haproxy.cfg"

"$TARGET_DIR/release/examples/echo_upstream" "127.0.0.1:$ECHO_PORT" 1 > "$WORK/echo.log" 2>&1 &
PIDS+=($!)
"$TARGET_DIR/release/examples/otlp_sink" --listen "127.0.0.1:$SINK_PORT" > "$WORK/sink.log" 2>&1 &
PIDS+=($!)

wait_port() {
  for _ in $(seq 150); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on port $1" >&2
  return 1
}
wait_port "$ECHO_PORT"
wait_port "$SINK_PORT"

# Instructions of one gateway run serving $2 calls with config $1.
instructions() {
  local out=$WORK/callgrind.$1.$2 port=$GATEWAY_PORT
  local command=("$GATEWAY_BIN" --config "$WORK/$1.toml")
  if [ "$1" = haproxy ]; then
    port=$HAPROXY_PORT
    command=(haproxy -db -f "$WORK/haproxy.cfg")
  fi
  local pin=()
  [ -n "$PIN" ] && pin=(taskset -c "$PIN")
  "${pin[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "${command[@]}" \
    > "$WORK/gateway.log" 2>&1 &
  local gateway=$!
  wait_port "$port"
  h2load -n "$2" -c "$CLIENTS" -m "$STREAMS" -t 1 -H 'content-type: application/grpc' \
    -H 'te: trailers' -d "$WORK/body.bin" "http://127.0.0.1:$port/echo.Echo/UnaryEcho" \
    > "$WORK/h2load.txt" 2>&1
  local succeeded
  succeeded=$(awk '/^requests:/ {print $8}' "$WORK/h2load.txt")
  if [ "$succeeded" != "$2" ]; then
    echo "$1: $succeeded of $2 calls succeeded" >&2
    cat "$WORK/h2load.txt" >&2
    return 1
  fi
  sleep 1.5 # the access log's writer and the exporter finish their last round
  kill -INT "$gateway"
  # HAProxy under valgrind does not act on SIGINT; SIGTERM (its hard stop) ends it.
  if [ "$1" = haproxy ]; then
    sleep 1
    kill -TERM "$gateway" 2>/dev/null || true
  fi
  wait "$gateway" || true
  awk '/^summary:/ {print $2}' "$out"*
  rm -f "$out"*
}

echo "# instructions per proxied unary call (callgrind, every thread of the proxy), calls $N_SMALL and $N_LARGE, h2load -c $CLIENTS -m $STREAMS, pinned to ${PIN:-all CPUs}; commit $(cd "$ROOT" && git rev-parse --short HEAD)"
printf '%-6s %12s %10s\n' config Ir/call vs_plain
plain=""
for config in $CONFIGS; do
  small=$(instructions "$config" "$N_SMALL")
  large=$(instructions "$config" "$N_LARGE")
  per_call=$(( (large - small) / (N_LARGE - N_SMALL) ))
  [ "$config" = plain ] && plain=$per_call
  ratio=$([ -n "$plain" ] && python3 -c "print(f'{$per_call / $plain:.3f}')" || echo "-")
  printf '%-6s %12d %10s\n' "$config" "$per_call" "$ratio"
done
