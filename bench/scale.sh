#!/usr/bin/env bash
# scale.sh — scale-out on loopback (bounded): two gateway processes in front of three upstream
# processes behind one dns:// name, answered by a small DNS server started here.
#
#   upstreams : echo_upstream on 127.0.0.2, .3, .4 (a fourth, .5, joins later), one port
#   DNS       : a UDP responder on 127.0.0.1 answering A records for echo.scale.test from a
#               file this script rewrites (TTL 0)
#   gateways  : two `tonic-msgpack-gateway --config` processes, endpoints =
#               ["dns://echo.scale.test:PORT"], resolve_interval 1 s, connections = CONNECTIONS
#   load      : THREADS grpcio threads calling unary (2 s deadline), each call to the next
#               gateway in turn; a gateway that answers UNAVAILABLE after it was stopped is
#               dropped from the rotation (what a load balancer's probe does)
#
# Phases (PHASE seconds each): steady; one upstream killed (SIGKILL) and removed from DNS; a
# new upstream added to DNS; gateway A reloaded (SIGHUP, same file); gateway B stopped
# gracefully (SIGTERM). Prints calls, failures by phase and code, p99 latency per phase, and the
# upstream connections each gateway holds (gateways × addresses × connections).
# Every process started here is ended by PID; every wait is bounded.
#
# Env knobs: WORK [/tmp/tonic-msgpack-scale]  THREADS [16]  PHASE [3]  CONNECTIONS [2]
#            PORT_BASE [50350]  SKIP_INSTALL [0]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-scale}
THREADS=${THREADS:-16}
PHASE=${PHASE:-3}
CONNECTIONS=${CONNECTIONS:-2}
PORT_BASE=${PORT_BASE:-50350}
SKIP_INSTALL=${SKIP_INSTALL:-0}
ECHO_PORT=$((PORT_BASE + 1))
DNS_PORT=$((PORT_BASE + 2))
GW_A=$((PORT_BASE + 11)); ADMIN_A=$((PORT_BASE + 12))
GW_B=$((PORT_BASE + 21)); ADMIN_B=$((PORT_BASE + 22))
NAME=echo.scale.test

RUN=$WORK/run
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN" "$RES"
log() { printf '[scale-bench] %s\n' "$*" >&2; }

declare -A UP_PIDS=()
DNS_PID=""; GWA_PID=""; GWB_PID=""; CLIENT_PID=""
stop_pid() { # SIGTERM, then SIGKILL after 5 s
  local p=$1
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
cleanup() {
  local p
  for p in $CLIENT_PID $GWA_PID $GWB_PID $DNS_PID "${UP_PIDS[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT INT TERM

if [ "$SKIP_INSTALL" != 1 ]; then
  [ -x "$WORK/venv/bin/python" ] || timeout 300 python3 -m venv "$WORK/venv"
  timeout 600 "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$ROOT/interop/python/requirements.txt"
fi
PY=$WORK/venv/bin/python

log "building echo_upstream and the gateway binary (release)"
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway --example echo_upstream)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ECHO_BIN=$TARGET_DIR/release/examples/echo_upstream
GATEWAY_BIN=$TARGET_DIR/release/tonic-msgpack-gateway

# ---------------------------------------------------------------- DNS server
cat > "$RUN/dns.py" <<'PY'
"""A UDP DNS responder: A records for one name from a file (one IPv4 per line), TTL 0."""
import socket, struct, sys
port, name, path = int(sys.argv[1]), sys.argv[2].lower().rstrip("."), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
while True:
    data, peer = sock.recvfrom(4096)
    if len(data) < 12:
        continue
    ident, flags = struct.unpack(">HH", data[:4])
    labels, i = [], 12
    while i < len(data) and data[i] != 0:
        labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
        i += 1 + data[i]
    question = data[12:i + 5]
    qtype = struct.unpack(">H", data[i + 1:i + 3])[0] if i + 3 <= len(data) else 0
    answers = []
    if ".".join(labels).lower() == name and qtype == 1:
        with open(path) as f:
            answers = [line.strip() for line in f if line.strip()]
    reply = struct.pack(">HHHHHH", ident, 0x8400 | (flags & 0x0100), 1, len(answers), 0, 0)
    reply += question
    for ip in answers:
        reply += struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(ip)
    sock.sendto(reply, peer)
PY
printf '127.0.0.2\n127.0.0.3\n127.0.0.4\n' > "$RUN/records"
"$PY" "$RUN/dns.py" "$DNS_PORT" "$NAME" "$RUN/records" >"$RUN/dns.log" 2>&1 &
DNS_PID=$!

wait_port() { # $1 = host, $2 = port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  log "nothing listens on $1:$2"; exit 1
}
start_upstream() { # $1 = ip
  "$ECHO_BIN" "$1:$ECHO_PORT" 1 >"$RUN/echo-$1.log" 2>&1 &
  UP_PIDS[$1]=$!
  wait_port "$1" "$ECHO_PORT"
}
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do start_upstream "$ip"; done

gateway_config() { # $1 = port, $2 = admin port
  cat <<EOF
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"
grace_period = "2s"
[dns]
servers = ["127.0.0.1:$DNS_PORT"]
[upstreams."echo.Echo"]
endpoints = ["dns://$NAME:$ECHO_PORT"]
resolve_interval = "1s"
connections = $CONNECTIONS
EOF
}
gateway_config "$GW_A" "$ADMIN_A" > "$RUN/gateway-a.toml"
gateway_config "$GW_B" "$ADMIN_B" > "$RUN/gateway-b.toml"
"$GATEWAY_BIN" --config "$RUN/gateway-a.toml" >"$RUN/gateway-a.log" 2>&1 &
GWA_PID=$!
"$GATEWAY_BIN" --config "$RUN/gateway-b.toml" >"$RUN/gateway-b.log" 2>&1 &
GWB_PID=$!
wait_port 127.0.0.1 "$GW_A"; wait_port 127.0.0.1 "$GW_B"

connections() { # upstream connections of each gateway, by endpoint
  local admin
  for admin in "$ADMIN_A" "$ADMIN_B"; do
    printf 'gateway :%s ' "$admin"
    { exec 3<>"/dev/tcp/127.0.0.1/$admin" && printf 'GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n' >&3 && cat <&3; } 2>/dev/null \
      | grep '^gateway_upstream_endpoint_connections' \
      | sed -E 's/.*endpoint="http:\/\/([0-9.]+):[0-9]+\/"\} ([0-9]+)/\1=\2/' | tr '\n' ' '
    echo
  done
}

# ---------------------------------------------------------------- the load
cat > "$RUN/client.py" <<'PY'
"""Unary calls (2 s deadline) spread over gateways; one JSON line per call to a results file."""
import json, sys, threading, time
import grpc, msgpack

targets, threads, duration, out = sys.argv[1].split(","), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
stopped_file = sys.argv[5]  # the script writes the stopped gateway's address here
calls = {t: grpc.insecure_channel(t).unary_unary(
    "/echo.Echo/UnaryEcho", request_serializer=msgpack.packb, response_deserializer=msgpack.unpackb)
    for t in targets}
alive, lock, records = list(targets), threading.Lock(), []
start = time.monotonic()

def worker(n):
    i = n
    while time.monotonic() - start < duration:
        with lock:
            if not alive:
                return
            target = alive[i % len(alive)]
        i += 1
        began = time.monotonic()
        code = "OK"
        try:
            calls[target]("0123456789abcdef", timeout=2.0)
        except grpc.RpcError as err:
            code = err.code().name
        took = time.monotonic() - began
        with lock:
            records.append((began - start, took, target, code))
            if code == "UNAVAILABLE":
                try:
                    stopped = open(stopped_file).read().strip()
                except OSError:
                    stopped = ""
                if target == stopped and target in alive:
                    alive.remove(target)

workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join(timeout=duration + 10)
with open(out, "w") as f:
    json.dump(records, f)
PY

: > "$RUN/stopped"
TOTAL=$((PHASE * 5))
timeout $((TOTAL + 30)) "$PY" "$RUN/client.py" "127.0.0.1:$GW_A,127.0.0.1:$GW_B" "$THREADS" "$TOTAL" \
  "$RES/calls.json" "$RUN/stopped" &
CLIENT_PID=$!
{
  echo "steady: $(connections)"
  sleep "$PHASE"
  log "phase 2: upstream 127.0.0.3 killed and removed from DNS"
  kill -9 "${UP_PIDS[127.0.0.3]}"; wait "${UP_PIDS[127.0.0.3]}" 2>/dev/null || true; UP_PIDS[127.0.0.3]=""
  printf '127.0.0.2\n127.0.0.4\n' > "$RUN/records"
  sleep "$PHASE"
  echo "after the kill: $(connections)"
  log "phase 3: upstream 127.0.0.5 added to DNS"
  start_upstream 127.0.0.5
  printf '127.0.0.2\n127.0.0.4\n127.0.0.5\n' > "$RUN/records"
  sleep "$PHASE"
  echo "after the addition: $(connections)"
  log "phase 4: gateway A reloaded (SIGHUP)"
  kill -HUP "$GWA_PID"
  sleep "$PHASE"
  echo "after the reload: $(connections)"
  log "phase 5: gateway B stopped (SIGTERM)"
  echo "127.0.0.1:$GW_B" > "$RUN/stopped"
  kill -TERM "$GWB_PID"
} > "$RES/connections.txt"
wait "$CLIENT_PID" || log "the client failed"
CLIENT_PID=""
for _ in $(seq 1 50); do kill -0 "$GWB_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$GWB_PID" 2>/dev/null; then log "gateway B did not stop within 5 s"; else GWB_PID=""; fi

# ---------------------------------------------------------------- report
cat "$RES/connections.txt"
"$PY" - "$RES/calls.json" "$PHASE" "127.0.0.1:$GW_B" <<'PY'
import collections, json, sys
records, phase, stopped = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
names = ["steady", "upstream killed", "upstream added", "gateway A reloaded", "gateway B stopped"]
print("| phase | calls | failed | failed on the stopped gateway | codes | p99 (ms) |")
print("|---|---:|---:|---:|---|---:|")
for index, name in enumerate(names):
    rows = [r for r in records if index * phase <= r[0] < (index + 1) * phase]
    failed = [r for r in rows if r[3] != "OK"]
    on_stopped = [r for r in failed if r[2] == stopped and index == 4]
    codes = collections.Counter(r[3] for r in failed)
    latencies = sorted(r[1] for r in rows)
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0
    print(f"| {name} | {len(rows)} | {len(failed)} | {len(on_stopped)} | "
          f"{', '.join(f'{k} {v}' for k, v in codes.items()) or '–'} | {p99:.1f} |")
print(f"longest call: {max(r[1] for r in records) * 1000:.0f} ms (deadline 2000 ms)")
PY
log "results in $RES"
