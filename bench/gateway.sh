#!/usr/bin/env bash
# gateway.sh — loopback benchmark of the tonic-msgpack gateway against direct calls, nginx
# grpc_pass and HAProxy (proto h2), all in one run. Adapted from the reference anchors script
# (shared/reference/gateway-anchors.sh): same pinning, h2load options, latency and connection
# sampling, so the figures compare.
#
#   direct         : h2load -> echo_upstream (tonic-msgpack, MessagePack echo)
#   gateway        : h2load -> the shipped binary `tonic-msgpack-gateway --config` with its
#                    defaults (multi-thread runtime, limits on) -> echo
#   gateway_tuned  : h2load -> gateway_bench example (GATEWAY_THREADS workers; 0 = one
#                    current-thread runtime), the same gateway library with a tuned runtime
#   nginx          : h2load -> nginx grpc_pass (upstream keepalive) -> echo
#   haproxy        : h2load -> haproxy mode http, proto h2 both sides, default http-reuse -> echo
#   haproxy_always : the same plus "http-reuse always"
#
# Scenarios: c50m10 (unary, -c 50 -m 10), c500m1 (unary, -c 500 -m 1) and stream
# (server streaming: one request, 10 response messages; -c 50 -m 10); opt-in: tls (unary,
# -c 50 -m 10, h2load over TLS 1.3 with ALPN h2 to the gateway's [tls], nginx `listen ssl`
# and HAProxy `bind ssl`, all three with the same ECDSA P-256 certificate made by openssl for
# the run; cleartext to the echo server behind them; no `direct` target: the echo server has
# no TLS). Run it with SCENARIOS=tls (or add it to the list).
# Opt-in: bridge (unary, -c 50 -m 10, a protobuf request to the gateway's [protobuf_bridge]
# listener, transcoded protobuf <-> MessagePack by a descriptor set written with
# `tonic-msgpack schema`; gateway targets only). Compare it with c50m10's gateway (passthrough)
# in the same run: SCENARIOS="c50m10 bridge" TARGETS="gateway".
# Opt-in target gateway_observed: the shipped binary with the same config plus tracing export
# at 100% sampling ([tracing], OTLP/gRPC to a local receiver that counts and drops the spans,
# the `otlp_sink` example, on SINK_CPUS) and the access log on ([access_log] to a file under
# WORK, deleted after each run). Compare it with `gateway` (both off) in the same run:
#   TARGETS="gateway gateway_observed" SCENARIOS="c50m10 stream"
# and with a build without the `otel` feature as gateway_alt (built first, and copied: this
# script rebuilds the default binary):
#   cargo build --release -p tonic-msgpack-gateway --no-default-features --features jemalloc
#   cp target/release/tonic-msgpack-gateway /tmp/gateway-no-otel
#   GATEWAY_ALT_BIN=/tmp/gateway-no-otel TARGETS="gateway_alt gateway gateway_observed" ...
# (not with the tls or bridge scenarios).
# Every h2load run is time-bounded (-D); every process started here is ended by PID.
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-bench]  scratch dir (configs, logs, results)
#   DURATION [10]  WARMUP [2]  REPEAT [3]
#   LOADGEN_CPUS [0]  SUT_CPUS [1]  SERVER_THREADS [1]
#   GATEWAY_THREADS [0]  tokio workers of gateway_tuned; 0 = one current-thread runtime (like
#                        nginx and haproxy nbthread 1: a single event loop)
#   SCENARIOS ["c50m10 c500m1 stream"]
#   TARGETS ["direct gateway nginx haproxy_always"]   (add "haproxy" for default http-reuse)
#   GW_CONNECTIONS [1]  upstream HTTP/2 connections of the gateway
#   GATEWAY_BASE_BIN []  another gateway_bench binary (e.g. a copy built from the base
#                        commit), run as target "gateway_base" for before/after in one run:
#                        TARGETS="direct gateway_base gateway nginx haproxy_always"
#   GATEWAY_ALT_BIN []  another build of the shipped binary (e.g. from the base commit, or with
#                       another allocator), run with the same --config as target "gateway_alt"
#   NGINX_KEEPALIVE [1024]  SKIP_INSTALL [0]
#   SINK_CPUS [$LOADGEN_CPUS]  where gateway_observed's OTLP receiver runs
#   PORT_BASE [50150]  ports used: +1 echo, +11 nginx, +21 haproxy, +31 gateway, +41 its admin,
#                      +61 gateway_observed's OTLP receiver
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-bench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
SUT_CPUS=${SUT_CPUS:-1}
SERVER_THREADS=${SERVER_THREADS:-1}
GATEWAY_THREADS=${GATEWAY_THREADS:-0}
SCENARIOS=${SCENARIOS:-"c50m10 c500m1 stream"}
TARGETS=${TARGETS:-"direct gateway nginx haproxy_always"}
REPEAT=${REPEAT:-3}
GW_CONNECTIONS=${GW_CONNECTIONS:-1}
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-1024}
SKIP_INSTALL=${SKIP_INSTALL:-0}

PORT_BASE=${PORT_BASE:-50150}
ECHO_PORT=$((PORT_BASE + 1))
NGINX_PORT=$((PORT_BASE + 11))
HAPROXY_PORT=$((PORT_BASE + 21))
GATEWAY_PORT=$((PORT_BASE + 31))
BRIDGE_PORT=$((PORT_BASE + 51))
SINK_PORT=$((PORT_BASE + 61))
SINK_CPUS=${SINK_CPUS:-$LOADGEN_CPUS}
UNARY=/echo.Echo/UnaryEcho
STREAM=/echo.Echo/StreamEcho

RUN=$WORK/run
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK" "$RUN" "$RES"

log() { printf '[gateway-bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- cleanup
ECHO_PID=""; PROXY_PID=""; SAMPLER=""; SINK_PID=""
cleanup() { # end only the processes this script started and that are still running
  local p
  for p in $SAMPLER $PROXY_PID $SINK_PID $ECHO_PID; do
    kill "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- tools
if [ "$SKIP_INSTALL" != 1 ]; then
  need=()
  command -v h2load  >/dev/null || need+=(nghttp2-client)
  command -v nginx   >/dev/null || need+=(nginx)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v ss      >/dev/null || need+=(iproute2)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

# ---------------------------------------------------------------- binaries (this repo)
log "building echo_upstream and gateway_bench (release)"
EXTRA_EXAMPLES=()   # gateway_observed's trace receiver, only when asked for
case " $TARGETS " in *" gateway_observed "*) EXTRA_EXAMPLES=(--example otlp_sink) ;; esac
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway --example echo_upstream --example gateway_bench "${EXTRA_EXAMPLES[@]}")
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ECHO_BIN=$TARGET_DIR/release/examples/echo_upstream
GATEWAY_BIN=$TARGET_DIR/release/tonic-msgpack-gateway
GATEWAY_TUNED_BIN=$TARGET_DIR/release/examples/gateway_bench
SINK_BIN=$TARGET_DIR/release/examples/otlp_sink
GATEWAY_BASE_BIN=${GATEWAY_BASE_BIN:-}
GATEWAY_ALT_BIN=${GATEWAY_ALT_BIN:-}
TONIC_VER=$(awk '/^name = "tonic"$/{getline; gsub(/[^0-9.]/,""); print}' "$ROOT/Cargo.lock")

# ---------------------------------------------------------------- request body
# gRPC frame: flag 0, u32 BE length, one MessagePack str of 32 bytes (str8: d9 20 ...)
python3 - "$WORK/body.bin" <<'PY'
import struct, sys
msg = b"0123456789abcdef0123456789abcdef"
mp = b"\xd9" + bytes([len(msg)]) + msg
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(mp)) + mp)
PY
BODY_LEN=$(stat -c %s "$WORK/body.bin")   # unary: the echo response body has the same length
# scenario bridge: the same 32-byte string as protobuf (field 1), for a stock protobuf client
python3 - "$WORK/body-proto.bin" <<'PY'
import struct, sys
msg = b"0123456789abcdef0123456789abcdef"
pb = b"\x0a" + bytes([len(msg)]) + msg
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
PY

# ---------------------------------------------------------------- configs
cat > "$RUN/gateway-base.toml" <<EOF
listen = "127.0.0.1:$GATEWAY_PORT"
grace_period = "1s"
[upstreams."echo.Echo"]
endpoints = ["http://127.0.0.1:$ECHO_PORT"]
connections = $GW_CONNECTIONS
EOF
# The shipped defaults, but for the admin port (kept off the usual 9901).
{ echo "admin_listen = \"127.0.0.1:$((PORT_BASE + 41))\""; cat "$RUN/gateway-base.toml"; } > "$RUN/gateway.toml"
# gateway_observed: the same, every call traced and exported, and logged.
cat "$RUN/gateway.toml" - > "$RUN/gateway-observed.toml" <<EOF
[tracing]
enabled = true
otlp_endpoint = "http://127.0.0.1:$SINK_PORT"
sampling_ratio = 1.0
[access_log]
enabled = true
path = "$RUN/access.log"
EOF
cat > "$RUN/nginx.conf" <<EOF
# single process (no master) so the script can end it by PID
master_process off;
daemon off;
worker_rlimit_nofile 65536;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx-body;
  proxy_temp_path $RUN/nginx-proxy;
  fastcgi_temp_path $RUN/nginx-fastcgi;
  uwsgi_temp_path $RUN/nginx-uwsgi;
  scgi_temp_path $RUN/nginx-scgi;
  upstream echo_upstream {
    server 127.0.0.1:$ECHO_PORT;
    keepalive $NGINX_KEEPALIVE;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    # nginx default closes a client connection after 1000 requests (GOAWAY)
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    location / {
      grpc_pass grpc://echo_upstream;
    }
  }
}
EOF

# shellcheck source=bench/haproxy-config.sh
. "$ROOT/bench/haproxy-config.sh"
haproxy_cfg() { # $1 = extra backend line (e.g. "http-reuse always") or empty
  haproxy_config "$HAPROXY_PORT" "$ECHO_PORT" "$1"
}
haproxy_cfg ""                    > "$RUN/haproxy.cfg"         # default http-reuse (safe)
haproxy_cfg "http-reuse always"   > "$RUN/haproxy-always.cfg"
nginx -t -q -c "$RUN/nginx.conf" 2>"$RUN/nginx-t.log" || { cat "$RUN/nginx-t.log" >&2; exit 1; }
haproxy -c -q -f "$RUN/haproxy.cfg"
haproxy -c -q -f "$RUN/haproxy-always.cfg"

# Bridge variants (scenario bridge): the echo service described for the protobuf bridge. Its
# messages are a string that travels as the MessagePack value itself (LAYOUT_VALUE).
case " $SCENARIOS " in *" bridge "*)
  mkdir -p "$RUN/proto"
  cat > "$RUN/proto/echo.proto" <<'PROTO'
syntax = "proto3";
package echo;
import "tonic_msgpack/options.proto";
service Echo {
  rpc UnaryEcho(Text) returns (Text);
  rpc StreamEcho(Text) returns (stream Text);
}
message Text { option (tonic_msgpack.layout) = LAYOUT_VALUE; string value = 1; }
PROTO
  (cd "$ROOT" && cargo run -q -p tonic-msgpack-cli -- schema --proto "$RUN/proto" --out "$RUN/echo.binpb")
  for f in gateway gateway-base; do
    printf 'descriptors = ["%s"]\n%s\n[protobuf_bridge]\nlisten = "127.0.0.1:%s"\n' \
      "$RUN/echo.binpb" "$(cat "$RUN/$f.toml")" "$BRIDGE_PORT" > "$RUN/$f-bridge.toml"
  done
  ;;
esac

# TLS variants (scenario tls): the same configs with TLS on the client side, one certificate.
SFX=""; SCHEME=http   # config-name suffix and URL scheme of the current scenario
case " $SCENARIOS " in *" tls "*)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$RUN/tls.key" -out "$RUN/tls.pem" 2>/dev/null
  cat "$RUN/tls.pem" "$RUN/tls.key" > "$RUN/tls-haproxy.pem"   # haproxy wants both in one file
  for f in gateway gateway-base; do
    printf '%s\n[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$(cat "$RUN/$f.toml")" "$RUN/tls.pem" "$RUN/tls.key" > "$RUN/$f-tls.toml"
  done
  sed -e "s|listen 127.0.0.1:$NGINX_PORT http2;|listen 127.0.0.1:$NGINX_PORT ssl http2;\n    ssl_certificate $RUN/tls.pem;\n    ssl_certificate_key $RUN/tls.key;\n    ssl_protocols TLSv1.3;|" \
    "$RUN/nginx.conf" > "$RUN/nginx-tls.conf"
  for f in haproxy haproxy-always; do
    sed -e "s|bind 127.0.0.1:$HAPROXY_PORT proto h2|bind 127.0.0.1:$HAPROXY_PORT ssl crt $RUN/tls-haproxy.pem alpn h2 ssl-min-ver TLSv1.3|" \
      "$RUN/$f.cfg" > "$RUN/$f-tls.cfg"
    haproxy -c -q -f "$RUN/$f-tls.cfg"
  done
  nginx -t -q -c "$RUN/nginx-tls.conf" 2>"$RUN/nginx-t.log" || { cat "$RUN/nginx-t.log" >&2; exit 1; }
  ;;
esac

# ---------------------------------------------------------------- process control
wait_port() {
  local port=$1 i
  for i in $(seq 1 100); do
    if ss -Htln "( sport = :$port )" | grep -q .; then return 0; fi
    sleep 0.1
  done
  log "port $port did not open"; return 1
}
for p in $ECHO_PORT $NGINX_PORT $HAPROXY_PORT $GATEWAY_PORT; do
  if ss -Htln "( sport = :$p )" | grep -q .; then
    log "port $p already in use; aborting"; exit 1
  fi
done

port_of() { case $1 in direct) echo $ECHO_PORT;; gateway*) echo $GATEWAY_PORT;; nginx) echo $NGINX_PORT;; haproxy*) echo $HAPROXY_PORT;; esac; }

stop_pid() { # end one of our processes by PID and wait for it
  local p=$1 i
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}
start_sut() { # fresh echo server (+ proxy) for every run, so no idle upstream conns carry over
  local t=$1
  taskset -c "$SUT_CPUS" "$ECHO_BIN" 127.0.0.1:$ECHO_PORT "$SERVER_THREADS" >>"$RUN/echo.log" 2>&1 &
  ECHO_PID=$!
  wait_port $ECHO_PORT
  PROXY_PID=""
  case $t in
    direct) ;;
    gateway)
      taskset -c "$SUT_CPUS" "$GATEWAY_BIN" --config "$RUN/gateway$SFX.toml" >>"$RUN/gateway.log" 2>&1 &
      PROXY_PID=$! ;;
    gateway_observed)
      taskset -c "$SINK_CPUS" "$SINK_BIN" --listen 127.0.0.1:$SINK_PORT >>"$RUN/otlp_sink.log" 2>&1 &
      SINK_PID=$!
      wait_port $SINK_PORT
      taskset -c "$SUT_CPUS" "$GATEWAY_BIN" --config "$RUN/gateway-observed.toml" >>"$RUN/gateway.log" 2>&1 &
      PROXY_PID=$! ;;
    gateway_alt)
      [ -x "$GATEWAY_ALT_BIN" ] || { log "gateway_alt needs GATEWAY_ALT_BIN"; exit 1; }
      taskset -c "$SUT_CPUS" "$GATEWAY_ALT_BIN" --config "$RUN/gateway$SFX.toml" >>"$RUN/gateway.log" 2>&1 &
      PROXY_PID=$! ;;
    gateway_tuned)
      taskset -c "$SUT_CPUS" "$GATEWAY_TUNED_BIN" "$RUN/gateway$SFX.toml" "$GATEWAY_THREADS" >>"$RUN/gateway.log" 2>&1 &
      PROXY_PID=$! ;;
    gateway_base)
      [ -x "$GATEWAY_BASE_BIN" ] || { log "gateway_base needs GATEWAY_BASE_BIN"; exit 1; }
      taskset -c "$SUT_CPUS" "$GATEWAY_BASE_BIN" "$RUN/gateway-base$SFX.toml" "$GATEWAY_THREADS" >>"$RUN/gateway.log" 2>&1 &
      PROXY_PID=$! ;;
    nginx)
      taskset -c "$SUT_CPUS" nginx -c "$RUN/nginx$SFX.conf" >>"$RUN/nginx.out" 2>&1 &
      PROXY_PID=$! ;;
    haproxy)
      taskset -c "$SUT_CPUS" haproxy -db -f "$RUN/haproxy$SFX.cfg" >>"$RUN/haproxy.log" 2>&1 &
      PROXY_PID=$! ;;
    haproxy_always)
      taskset -c "$SUT_CPUS" haproxy -db -f "$RUN/haproxy-always$SFX.cfg" >>"$RUN/haproxy.log" 2>&1 &
      PROXY_PID=$! ;;
    *) log "unknown target $t"; exit 1 ;;
  esac
  if [ -n "$PROXY_PID" ]; then wait_port "$(port_of "$t")"; fi
}
stop_sut() {
  stop_pid "$PROXY_PID"; PROXY_PID=""
  # gateway_observed: the receiver logs how many spans it got; the access log can be large.
  stop_pid "$SINK_PID"; SINK_PID=""; rm -f "$RUN/access.log"
  stop_pid "$ECHO_PID"; ECHO_PID=""
  local i
  for i in $(seq 1 50); do ss -Htln "( sport = :$ECHO_PORT )" | grep -q . || break; sleep 0.1; done
}
upstream_conns() { # established conns to the echo port owned by the proxy (or by h2load for direct)
  if [ -n "$PROXY_PID" ]; then
    ss -Htnp state established "( dport = :$ECHO_PORT )" | grep -c "pid=$PROXY_PID," || true
  else
    ss -Htnp state established "( dport = :$ECHO_PORT )" | grep -c '"h2load"' || true
  fi
}

# ---------------------------------------------------------------- grpc-status check (nghttp)
# Each target must echo with grpc-status 0 and the same bytes, stream 10 frames, and answer an
# unknown method with grpc-status 12 (UNIMPLEMENTED).
: > "$RES/grpc-check.txt"
grpc_status() { # port path -> grpc-status of the response (headers or trailers)
  nghttp -v -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/body.bin" \
    "$SCHEME://127.0.0.1:$1$2" 2>&1 | sed -n 's/.*grpc-status: \([0-9]*\).*/\1/p' | tail -1
}
for t in $TARGETS; do
  start_sut "$t"
  port=$(port_of "$t")
  ok=$(grpc_status "$port" "$UNARY"); st=$(grpc_status "$port" "$STREAM"); neg=$(grpc_status "$port" /echo.Echo/NoSuchMethod)
  bytes=$(nghttp -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/body.bin" "http://127.0.0.1:$port$UNARY" | cmp -s - "$WORK/body.bin" && echo match || echo DIFFER)
  sbytes=$(nghttp -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/body.bin" "http://127.0.0.1:$port$STREAM" | wc -c)
  echo "$t: unary grpc-status=$ok (echo bytes $bytes), stream grpc-status=$st ($sbytes bytes = 10 x $BODY_LEN), unknown method grpc-status=$neg" | tee -a "$RES/grpc-check.txt" >&2
  stop_sut
  if [ "$ok" != 0 ] || [ "$st" != 0 ] || [ "$neg" != 12 ] || [ "$bytes" != match ] || [ "$sbytes" != $((10 * BODY_LEN)) ]; then
    log "grpc check FAILED for $t"; exit 1
  fi
done
case " $SCENARIOS " in *" tls "*) # the same check over TLS (nghttp does not verify the certificate)
  SFX=-tls; SCHEME=https
  for t in $TARGETS; do
    case $t in direct|gateway_observed) continue ;; esac
    start_sut "$t"
    port=$(port_of "$t")
    ok=$(grpc_status "$port" "$UNARY"); neg=$(grpc_status "$port" /echo.Echo/NoSuchMethod)
    echo "$t over TLS: unary grpc-status=$ok, unknown method grpc-status=$neg" | tee -a "$RES/grpc-check.txt" >&2
    stop_sut
    if [ "$ok" != 0 ] || [ "$neg" != 12 ]; then log "grpc check over TLS FAILED for $t"; exit 1; fi
  done
  SFX=""; SCHEME=http ;;
esac

# ---------------------------------------------------------------- load runs
cpu_snap() { # cpuN busy total steal
  awk '/^cpu[0-9]+ /{busy=$2+$3+$4+$7+$8+$9; tot=busy+$5+$6; print $1, busy, tot, $9}' /proc/stat
}
cpu_busy() { # before-file after-file -> "cpu0=NN% cpu1=NN%"
  join "$1" "$2" | awk '{b=$5-$2; t=$6-$3; printf "%s=%.0f%% ", $1, (t>0?100*b/t:0)}'
}
pct() { # sorted-file p -> value (nearest rank)
  awk -v p="$2" '{a[NR]=$1} END{ if(NR==0){print "NA"; exit} i=int(p*NR+0.999999); if(i<1)i=1; if(i>NR)i=NR; print a[i] }' "$1"
}

printf 'scenario\ttarget\trep\treq_s\tp50_ms\tp99_ms\tupstream_conns_mid\tupstream_conns_max\tsucceeded\tfailed\tnon2xx\tdata_B_per_req\tbg_busy\tcpu\n' > "$RES/raw.tsv"

for rep in $(seq 1 "$REPEAT"); do
for sc in $SCENARIOS; do
  METHOD=$UNARY; EXPECT=$BODY_LEN; BODY=$WORK/body.bin
  if [ "$sc" = stream ]; then METHOD=$STREAM; EXPECT=$((10 * BODY_LEN)); fi
  case $sc in
    c50m10) H2OPTS=(-c 50 -m 10) ;;
    c500m1) H2OPTS=(-c 500 -m 1) ;;
    stream) H2OPTS=(-c 50 -m 10) ;;
    # one cipher for all: left to choose, HAProxy picks AES-256 (server order), the others AES-128
    tls) H2OPTS=(-c 50 -m 10 --tls13-ciphers=TLS_AES_128_GCM_SHA256) ;;
    bridge) H2OPTS=(-c 50 -m 10); BODY=$WORK/body-proto.bin ;;
    *) log "unknown scenario $sc"; exit 1 ;;
  esac
  if [ "$sc" = tls ]; then SFX=-tls; SCHEME=https; else SFX=""; SCHEME=http; fi
  if [ "$sc" = bridge ]; then SFX=-bridge; fi
  # Even repeats run the targets in reverse: a target that always ran right after another
  # (its 500 connections just closed, say) read up to 15% slower here.
  ORDER=$TARGETS
  if [ $((rep % 2)) = 0 ]; then ORDER=$(tr ' ' '\n' <<< "$TARGETS" | tac | tr '\n' ' '); fi
  for t in $ORDER; do
    if [ "$sc" = tls ] && [ "$t" = direct ]; then continue; fi
    case $sc-$t in tls-gateway_observed|bridge-gateway_observed) continue ;; esac
    port=$(port_of "$t")
    if [ "$sc" = bridge ]; then
      case $t in gateway*) port=$BRIDGE_PORT ;; *) continue ;; esac
    fi
    tag=$sc-$t-r$rep
    # background load check: CPU busy over 1 s with our processes idle (other jobs on the box?)
    cpu_snap > "$RES/$tag.bg0"; sleep 1; cpu_snap > "$RES/$tag.bg1"
    bg=$(join "$RES/$tag.bg0" "$RES/$tag.bg1" | awk '{b+=$5-$2; t+=$6-$3} END{printf "%.0f%%", (t>0?100*b/t:0)}')
    start_sut "$t"
    if [ "$sc" = bridge ]; then wait_port "$BRIDGE_PORT"; fi
    log "run $tag (${H2OPTS[*]}, ${WARMUP}s warm-up + ${DURATION}s; background busy before run: $bg)"
    ( end=$((SECONDS + WARMUP + DURATION)); i=0
      while [ $SECONDS -lt $end ]; do echo "$SECONDS $(upstream_conns)"; sleep 1; done
    ) > "$RES/$tag.conns" &
    SAMPLER=$!
    t0=$SECONDS
    cpu_snap > "$RES/$tag.cpu0"
    taskset -c "$LOADGEN_CPUS" h2load -D "$DURATION" --warm-up-time "$WARMUP" "${H2OPTS[@]}" -t 1 \
      -H 'content-type: application/grpc' -H 'te: trailers' -d "$BODY" \
      --log-file="$RES/$tag.reqlog" \
      "$SCHEME://127.0.0.1:$port$METHOD" > "$RES/$tag.h2load.txt" 2>&1 || true
    cpu_snap > "$RES/$tag.cpu1"
    wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
    stop_sut

    out=$RES/$tag.h2load.txt
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$out")
    read -r succ fail < <(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' "$out") || true
    read -r s2 s3 s4 s5 < <(sed -n 's/^status codes: \([0-9]*\) 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3 \4/p' "$out") || true
    non2xx=$(( ${s3:-0} + ${s4:-0} + ${s5:-0} ))
    # data bytes include warm-up traffic, so this is only a lower-bound sanity check (>= BODY_LEN)
    data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' "$out")
    dpr=$(awk -v d="${data:-0}" -v s="${succ:-0}" 'BEGIN{ if(s>0) printf "%.1f", d/s; else print "NA"}')
    awk '$2==200{print $3}' "$RES/$tag.reqlog" | sort -n > "$RES/$tag.lat"
    p50=$(pct "$RES/$tag.lat" 0.50); p99=$(pct "$RES/$tag.lat" 0.99)
    p50ms=$(awk -v v="$p50" 'BEGIN{ if(v=="NA") print v; else printf "%.2f", v/1000}')
    p99ms=$(awk -v v="$p99" 'BEGIN{ if(v=="NA") print v; else printf "%.2f", v/1000}')
    midn=$(awk -v m=$((t0 + WARMUP + DURATION / 2)) '$1>=m{print $2; exit}' "$RES/$tag.conns")
    maxn=$(awk 'BEGIN{m=0} $2>m{m=$2} END{print m}' "$RES/$tag.conns")
    cpu=$(cpu_busy "$RES/$tag.cpu0" "$RES/$tag.cpu1")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$t" "$rep" "${rps:-NA}" "$p50ms" "$p99ms" \
      "${midn:-NA}" "$maxn" "${succ:-NA}" "${fail:-NA}" "$non2xx" "$dpr" "$bg" "$cpu" >> "$RES/raw.tsv"
    rm -f "$RES/$tag.reqlog"
    if [ "${fail:-1}" != 0 ] || [ "$non2xx" != 0 ]; then log "WARNING: $tag had failures (see $out)"; fi
    if awk -v d="$dpr" -v b="$EXPECT" 'BEGIN{exit !(d=="NA" || d+0 < b)}'; then log "WARNING: $tag data/req $dpr < $EXPECT"; fi
  done
done
done

# ---------------------------------------------------------------- table
{
  echo "# tonic-msgpack gateway benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  host=$(hostname) cores=$(nproc)"
  echo "# $(nginx -v 2>&1) | $(haproxy -v | head -1) | $(h2load --version | head -1) | tonic $TONIC_VER | gateway: the shipped binary with its defaults; gateway_tuned: GATEWAY_THREADS=$GATEWAY_THREADS (0 = current-thread runtime); $GW_CONNECTIONS upstream conn(s)"
  echo "# pinning: h2load -t1 on CPU $LOADGEN_CPUS; echo server ($SERVER_THREADS tokio worker) + proxy or gateway on CPU $SUT_CPUS"
  echo "# nginx: upstream keepalive $NGINX_KEEPALIVE; haproxy: nbthread 1, default http-reuse (haproxy_always: http-reuse always)"
  echo "# each run: ${WARMUP}s warm-up + ${DURATION}s measured, fresh server+proxy per run; $REPEAT repeat(s)"
  echo "# req/s, p50, p99: median over repeats (p50/p99 from h2load --log-file, status 200 only); range = min..max req/s"
  echo "# upstr_conns: established TCP conns to :$ECHO_PORT owned by the proxy (direct: by h2load), mid-run sample / max sample (max over repeats)"
  echo "# stream: server streaming, 1 request -> 10 MessagePack messages; req/s counts whole calls"
  echo "# tls: unary -c 50 -m 10 over TLS 1.3 (TLS_AES_128_GCM_SHA256, ALPN h2, one ECDSA P-256 certificate for all) to the proxy; cleartext behind it"
  echo "# gateway_observed: gateway + [tracing] at 100% sampling to a local OTLP receiver (otlp_sink, CPU $SINK_CPUS) + [access_log] to a file"
  echo "# bg: CPU busy of the whole box in the 1 s before each run (max over repeats); >10% means something else was running"
  echo
  awk -F'\t' '
    function med(s,   a, n, i, j, t) { n = split(s, a, " ");
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j+1] = a[j]; a[j+1] = t }
      return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
    NR == 1 { next }
    { k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k; sc[k] = $1; tg[k] = $2; mn[k] = $4; mx[k] = $4 }
      rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
      if ($4 + 0 < mn[k] + 0) mn[k] = $4; if ($4 + 0 > mx[k] + 0) mx[k] = $4
      if ($7 + 0 > cmid[k] + 0) cmid[k] = $7; if ($8 + 0 > cmax[k] + 0) cmax[k] = $8
      fail[k] += $10; n2[k] += $11; b = $13; sub("%", "", b); if (b + 0 > bg[k] + 0) bg[k] = b; cpu[k] = $14 }
    END {
      for (i = 1; i <= nk; i++) { k = order[i]; R[k] = med(rps[k]); if (tg[k] == "direct") base[sc[k]] = R[k] }
      printf "%-8s %-15s %9s %15s %8s %8s %9s %11s %7s %7s %5s  %s\n", "scenario", "target", "req/s", "range", "p50_ms", "p99_ms", "vs_direct", "upstr_conns", "failed", "non2xx", "bg", "cpu busy (last rep)"
      for (i = 1; i <= nk; i++) { k = order[i]
        r = (base[sc[k]] > 0) ? sprintf("%.2f", R[k] / base[sc[k]]) : "NA"
        printf "%-8s %-15s %9.0f %7.0f..%-7.0f %8.2f %8.2f %9s %5s/%-5s %7d %7d %4s%%  %s\n", sc[k], tg[k], R[k], mn[k], mx[k], med(p50[k]), med(p99[k]), r, cmid[k], cmax[k], fail[k], n2[k], bg[k], cpu[k] }
    }' "$RES/raw.tsv"
  echo
  echo "grpc-status check (nghttp, before the load runs):"
  cat "$RES/grpc-check.txt"
} | tee "$RES/table.txt"
log "results in $RES (raw.tsv = every run)"
