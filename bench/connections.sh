#!/usr/bin/env bash
# connections.sh — what idle client connections cost the gateway, nginx grpc_pass and HAProxy,
# in one run on loopback: memory per idle connection, the p99 of active clients while the idle
# ones are held, and the RSS after they close.
#
# For each target (fresh echo upstream and proxy each time), and each phase (h2: idle HTTP/2
# connections that sent the preface and SETTINGS; h1: idle HTTP/1.1 keep-alive connections
# that made one request):
#   1. RSS of the proxy after one warm-up call ("start");
#   2. h2load: ACTIVE clients calling unary for ACTIVE_SECONDS ("baseline" p99);
#   3. IDLE connections opened and held by a Python holder; RSS again ("held"): the memory
#      per idle connection is (held - start) / IDLE;
#   4. h2load again while they are held ("with idle" p99);
#   5. the idle connections closed; SETTLE seconds later the RSS ("after close").
# Targets: gateway (the shipped binary with its defaults), nginx, haproxy_always (as in
# gateway.sh). Pinning: proxy and echo on SUT_CPUS, h2load and the holder on LOADGEN_CPUS.
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-connections]  IDLE [9000]  ACTIVE [100]  ACTIVE_SECONDS [5]
#   SETTLE [12] (jemalloc returns freed memory about 10 s after it was freed)
#   TARGETS ["gateway nginx haproxy_always"]  PHASES ["h2 h1"]
#   SUT_CPUS [1]  LOADGEN_CPUS [0]  PORT_BASE [50250]  SKIP_BUILD [0]
# The holder and the proxies need IDLE + a few hundred file descriptors: the script raises its
# soft limit to the hard one (20,000 on the machines this was written on), so IDLE stays
# below that; HAProxy asks for two per connection (maxconn 9,900 here).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-connections}
IDLE=${IDLE:-9000}
ACTIVE=${ACTIVE:-100}
ACTIVE_SECONDS=${ACTIVE_SECONDS:-5}
SETTLE=${SETTLE:-12}
TARGETS=${TARGETS:-"gateway nginx haproxy_always"}
PHASES=${PHASES:-"h2 h1"}
SUT_CPUS=${SUT_CPUS-1}
LOADGEN_CPUS=${LOADGEN_CPUS-0}
PORT_BASE=${PORT_BASE:-50250}
SKIP_BUILD=${SKIP_BUILD:-0}

ECHO_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 11))     # h2 (and, for the gateway, HTTP/1.1 too)
PROXY_H1_PORT=$((PORT_BASE + 12))  # HTTP/1.1 for nginx and HAProxy
ADMIN_PORT=$((PORT_BASE + 21))
RUN=$WORK/run
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN" "$RES"
log() { echo "[connections] $*" >&2; }
# Pinning prefixes (taskset execs the program, so `$!` is the program's PID).
SUT=(); LOADGEN=()
if command -v taskset >/dev/null; then
  [ -n "$SUT_CPUS" ] && SUT=(taskset -c "$SUT_CPUS")
  [ -n "$LOADGEN_CPUS" ] && LOADGEN=(taskset -c "$LOADGEN_CPUS")
fi

ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -le $((IDLE + 200)) ]; then
  log "open-file limit $(ulimit -n) is too low for IDLE=$IDLE"; exit 1
fi
for tool in h2load nginx haproxy python3; do
  command -v "$tool" >/dev/null || { log "needs $tool (apt-get install nghttp2-client nginx haproxy)"; exit 1; }
done

if [ "$SKIP_BUILD" != 1 ]; then
  log "building the gateway binary and echo_upstream (release)"
  (cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway --example echo_upstream)
fi
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ECHO_BIN=$TARGET_DIR/release/examples/echo_upstream
GATEWAY_BIN=$TARGET_DIR/release/tonic-msgpack-gateway

# gRPC frame: one MessagePack str of 32 bytes, as in gateway.sh
python3 - "$RUN/body.bin" <<'PY'
import struct, sys
msg = b"0123456789abcdef0123456789abcdef"
mp = b"\xd9" + bytes([len(msg)]) + msg
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(mp)) + mp)
PY

cat > "$RUN/gateway.toml" <<EOF
listen = "127.0.0.1:$PROXY_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
grace_period = "1s"
[upstreams."echo.Echo"]
endpoints = ["http://127.0.0.1:$ECHO_PORT"]
EOF
cat > "$RUN/nginx.conf" <<EOF
master_process off;
daemon off;
worker_rlimit_nofile 20000;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx-body;
  proxy_temp_path $RUN/nginx-proxy;
  fastcgi_temp_path $RUN/nginx-fastcgi;
  uwsgi_temp_path $RUN/nginx-uwsgi;
  scgi_temp_path $RUN/nginx-scgi;
  upstream echo_upstream {
    server 127.0.0.1:$ECHO_PORT;
    keepalive 1024;
  }
  server {
    listen 127.0.0.1:$PROXY_PORT http2;
    listen 127.0.0.1:$PROXY_H1_PORT;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    location / { grpc_pass grpc://echo_upstream; }
  }
}
EOF
cat > "$RUN/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9900
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
frontend fe
  bind 127.0.0.1:$PROXY_PORT proto h2
  bind 127.0.0.1:$PROXY_H1_PORT
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$ECHO_PORT proto h2
EOF

# The holder: opens IDLE connections, says it holds them, waits for "close" on stdin.
cat > "$RUN/holder.py" <<'PY'
import asyncio, resource, sys
kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
REQUEST = f"GET /not-a-route HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
async def one():
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "h2":
        writer.write(PREFACE + SETTINGS_ACK)
        await writer.drain()
        await asyncio.wait_for(reader.read(9), 10)   # the server's SETTINGS frame header
    else:
        writer.write(REQUEST)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await asyncio.wait_for(reader.readexactly(length), 10)
    return writer
async def main():
    writers, failed = [], 0
    for start in range(0, count, 500):
        results = await asyncio.gather(*(one() for _ in range(min(500, count - start))), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException): failed += 1
            else: writers.append(r)
    print(f"held {len(writers)} failed {failed}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in writers: w.close()
    print("closed", flush=True)
asyncio.run(main())
PY

wait_port() { local i; for i in $(seq 1 100); do ss -Htln "( sport = :$1 )" | grep -q . && return 0; sleep 0.1; done; log "port $1 did not open"; return 1; }
stop_pid() { local p=$1 i; [ -n "$p" ] || return 0; kill "$p" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do stop_pid "$p"; done; }
trap cleanup EXIT

start_target() { # $1 target -> PROXY_PID, ECHO_PID
  "${SUT[@]}" "$ECHO_BIN" "127.0.0.1:$ECHO_PORT" 1 >>"$RUN/echo.log" 2>&1 &
  ECHO_PID=$!; PIDS+=("$ECHO_PID"); wait_port "$ECHO_PORT"
  case $1 in
    gateway) "${SUT[@]}" "$GATEWAY_BIN" --config "$RUN/gateway.toml" >>"$RUN/gateway.log" 2>&1 & ;;
    nginx) "${SUT[@]}" nginx -c "$RUN/nginx.conf" >>"$RUN/nginx.out" 2>&1 & ;;
    haproxy_always) "${SUT[@]}" haproxy -db -f "$RUN/haproxy.cfg" >>"$RUN/haproxy.log" 2>&1 & ;;
    *) log "unknown target $1"; exit 1 ;;
  esac
  PROXY_PID=$!; PIDS+=("$PROXY_PID"); wait_port "$PROXY_PORT"
}
p99_ms() { # h2load log file -> p99 in ms of status-200 requests
  python3 - "$1" <<'PY'
import sys
lat = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.split()[1] == "200")
print(f"{lat[int(0.99 * (len(lat) - 1))] / 1000:.2f}" if lat else "NA")
PY
}
active() { # tag -> p99 ms of ACTIVE clients for ACTIVE_SECONDS
  "${LOADGEN[@]}" h2load -c "$ACTIVE" -m 1 -t 1 -D "$ACTIVE_SECONDS" --log-file="$RES/$1.reqlog" \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$RUN/body.bin" \
    "http://127.0.0.1:$PROXY_PORT/echo.Echo/UnaryEcho" > "$RES/$1.h2load" 2>&1 || true
  p99_ms "$RES/$1.reqlog"
}

printf 'target\tphase\tidle_held\trss_start_kb\trss_held_kb\tkb_per_idle_conn\trss_after_close_kb\tafter_vs_start\tp99_baseline_ms\tp99_with_idle_ms\tp99_ratio\n' > "$RES/raw.tsv"
for t in $TARGETS; do
  for phase in $PHASES; do
    log "$t / $phase: $IDLE idle connections, $ACTIVE active clients"
    start_target "$t"
    port=$PROXY_PORT
    [ "$phase" = h1 ] && [ "$t" != gateway ] && port=$PROXY_H1_PORT
    active "$t-$phase-warm" >/dev/null
    start=$(rss_kb "$PROXY_PID")
    base=$(active "$t-$phase-base")
    coproc HOLDER { "${LOADGEN[@]}" python3 "$RUN/holder.py" "$phase" "$port" "$IDLE" 2>"$RES/$t-$phase.holder.err"; }
    read -r -t 300 line <&"${HOLDER[0]}" || line="holder timed out"
    held_n=$(echo "$line" | awk '{print $2}')
    sleep 2
    held=$(rss_kb "$PROXY_PID")
    with=$(active "$t-$phase-idle")
    echo close >&"${HOLDER[1]}"
    read -r -t 60 _ <&"${HOLDER[0]}" || true
    wait "$HOLDER_PID" 2>/dev/null || true
    sleep "$SETTLE"
    after=$(rss_kb "$PROXY_PID")
    python3 - "$t" "$phase" "${held_n:-0}" "$start" "$held" "$after" "$base" "$with" >> "$RES/raw.tsv" <<'PY'
import sys
t, phase, n, start, held, after, base, with_ = sys.argv[1:]
n, start, held, after = int(n), int(start), int(held), int(after)
per = f"{(held - start) / n:.1f}" if n else "NA"
ratio = f"{float(with_) / float(base):.2f}" if "NA" not in (base, with_) and float(base) > 0 else "NA"
print("\t".join([t, phase, str(n), str(start), str(held), per, str(after), f"{after / start:.2f}", base, with_, ratio]))
PY
    stop_pid "$PROXY_PID"; stop_pid "$ECHO_PID"
    tail -1 "$RES/raw.tsv" >&2
  done
done

{
  echo "# idle connections: $IDLE per phase, $ACTIVE active h2load clients for ${ACTIVE_SECONDS}s; RSS after close: ${SETTLE}s after; $(date -u +%FT%TZ), cores=$(nproc), commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# pinning: proxy + echo on CPU $SUT_CPUS; h2load + holder on CPU $LOADGEN_CPUS"
  echo
  echo "| target | phase | idle held | RSS start → held → after close (MB) | KB per idle connection | after / start | active p99 baseline → with idle (ms) |"
  echo "|---|---|---|---|---|---|---|"
  tail -n +2 "$RES/raw.tsv" | awk -F'\t' '{ printf "| %s | %s | %s | %.1f → %.1f → %.1f | %s | %s | %s → %s (%s×) |\n", $1, $2, $3, $4/1024, $5/1024, $7/1024, $6, $8, $9, $10, $11 }'
} | tee "$RES/table.md"
log "results in $RES"
