#!/usr/bin/env bash
# rest.sh — REST/JSON unary through the gateway vs the same call as gRPC, in one run.
#
#   grpc          : h2load (h2c, application/grpc, one MessagePack message), CONNS x STREAMS in flight
#   rest_h2c      : h2load (h2c, application/json) POST /bench.Echo/Echo, CONNS x STREAMS in flight
#   grpc_m1       : h2load gRPC with one stream per connection: CONNS in flight, like wrk
#   rest_http1    : wrk (HTTP/1.1 keep-alive, JSON) POST /bench.Echo/Echo, CONNS in flight
# all through the gateway (typed transcoder for REST) to the same bench.Echo upstream.
#
# The upstream and the gateway are gateway/examples/rest_bench.rs. Loader and system under test
# are pinned to different CPUs (as in bench/gateway.sh). Every run is time-bounded; every process
# started here is ended by PID.
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-rest-bench]  DURATION [10]  WARMUP [2]  CONNS [50]  STREAMS [10]
#   LOADGEN_CPUS [0]  SUT_CPUS [1]  GATEWAY_THREADS [0] (0 = current-thread runtime)
#   PORT_BASE [50250]  ports: +1 upstream, +2 gateway   SKIP_INSTALL [0]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-rest-bench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
STREAMS=${STREAMS:-10}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
SUT_CPUS=${SUT_CPUS:-1}
GATEWAY_THREADS=${GATEWAY_THREADS:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
PORT_BASE=${PORT_BASE:-50250}
UP_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES"

log() { printf '[rest-bench] %s\n' "$*" >&2; }

UP_PID=""; GW_PID=""
cleanup() { local p; for p in $GW_PID $UP_PID; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [ "$SKIP_INSTALL" != 1 ]; then
  need=()
  command -v h2load  >/dev/null || need+=(nghttp2-client)
  command -v wrk     >/dev/null || need+=(wrk)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v ss      >/dev/null || need+=(iproute2)
  command -v curl    >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

log "building rest_bench (release)"
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --example rest_bench)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/examples/rest_bench

# The same 32-byte message both ways: gRPC = frame(MessagePack [str]), REST = {"message": str}.
MSG=0123456789abcdef0123456789abcdef
python3 - "$RES/grpc.bin" "$MSG" <<'PY'
import struct, sys
msg = sys.argv[2].encode()
mp = b"\x91" + b"\xd9" + bytes([len(msg)]) + msg     # fixarray(1) [ str8 ]
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(mp)) + mp)
PY
printf '{"message":"%s"}' "$MSG" > "$RES/rest.json"
cat > "$RES/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"message":"$MSG"}'
wrk.headers["Content-Type"] = "application/json"
EOF
cat > "$RES/gateway.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"
grace_period = "1s"
[upstreams."bench.Echo"]
endpoints = ["http://127.0.0.1:$UP_PORT"]
EOF

wait_port() {
  local i
  for i in $(seq 1 100); do
    ss -Htln "( sport = :$1 )" | grep -q . && return 0
    sleep 0.1
  done
  log "port $1 did not open"; return 1
}
for p in $UP_PORT $GW_PORT; do
  if ss -Htln "( sport = :$p )" | grep -q .; then log "port $p already in use; aborting"; exit 1; fi
done
taskset -c "$SUT_CPUS" "$BIN" upstream "127.0.0.1:$UP_PORT" 0 >"$RES/upstream.log" 2>&1 &
UP_PID=$!
wait_port $UP_PORT
taskset -c "$SUT_CPUS" "$BIN" gateway "$RES/gateway.toml" "$GATEWAY_THREADS" >"$RES/gateway.log" 2>&1 &
GW_PID=$!
wait_port $GW_PORT

# Sanity: both answer the echo.
URL=http://127.0.0.1:$GW_PORT/bench.Echo/Echo
rest=$(curl -sS --max-time 5 -H 'content-type: application/json' --data-binary @"$RES/rest.json" "$URL")
[ "$rest" = "$(cat "$RES/rest.json")" ] || { log "REST check failed: $rest"; exit 1; }
grpc_status=$(nghttp -v -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$RES/grpc.bin" "$URL" 2>&1 | sed -n 's/.*grpc-status: \([0-9]*\).*/\1/p' | tail -1)
[ "$grpc_status" = 0 ] || { log "gRPC check failed: grpc-status=$grpc_status"; exit 1; }
log "checks ok: REST echo $rest, gRPC grpc-status 0"

pct() { # sorted-file p -> value (nearest rank)
  awk -v p="$2" '{a[NR]=$1} END{ if(NR==0){print "NA"; exit} i=int(p*NR+0.999999); if(i<1)i=1; if(i>NR)i=NR; print a[i] }' "$1"
}
printf 'target\treq_s\tp50_ms\tp99_ms\tnon2xx_or_errors\n' > "$RES/table.tsv"

run_h2load() { # name content-type body-file streams
  local name=$1 ct=$2 body=$3 streams=$4 out=$RES/$1.h2load.txt
  log "run $name: h2load -c $CONNS -m $streams, ${WARMUP}s warm-up + ${DURATION}s"
  taskset -c "$LOADGEN_CPUS" h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$CONNS" -m "$streams" -t 1 \
    -H "content-type: $ct" -H 'te: trailers' -d "$body" --log-file="$RES/$name.reqlog" "$URL" > "$out" 2>&1 || true
  local rps fail s3 s4 s5
  rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$out")
  fail=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$out")
  read -r s3 s4 s5 < <(sed -n 's/^status codes: [0-9]* 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3/p' "$out") || true
  awk '$2==200{print $3}' "$RES/$name.reqlog" | sort -n > "$RES/$name.lat"
  local p50 p99
  p50=$(pct "$RES/$name.lat" 0.50); p99=$(pct "$RES/$name.lat" 0.99)
  printf '%s\t%s\t%.2f\t%.2f\t%s\n' "$name" "${rps:-NA}" "$(awk -v v="$p50" 'BEGIN{print v/1000}')" \
    "$(awk -v v="$p99" 'BEGIN{print v/1000}')" $(( ${fail:-0} + ${s3:-0} + ${s4:-0} + ${s5:-0} )) >> "$RES/table.tsv"
  rm -f "$RES/$name.reqlog"
}

run_h2load grpc application/grpc "$RES/grpc.bin" "$STREAMS"
run_h2load rest_h2c application/json "$RES/rest.json" "$STREAMS"
run_h2load grpc_m1 application/grpc "$RES/grpc.bin" 1

log "run rest_http1: wrk -c $CONNS (HTTP/1.1 keep-alive), ${WARMUP}s warm-up + ${DURATION}s"
taskset -c "$LOADGEN_CPUS" wrk -t1 -c "$CONNS" -d "${WARMUP}s" -s "$RES/post.lua" "$URL" > /dev/null 2>&1 || true
taskset -c "$LOADGEN_CPUS" wrk -t1 -c "$CONNS" -d "${DURATION}s" --latency -s "$RES/post.lua" "$URL" > "$RES/rest_http1.wrk.txt" 2>&1 || true
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print "NA"}'; }
w=$RES/rest_http1.wrk.txt
wrps=$(awk '/^Requests\/sec:/{print $2}' "$w")
wp50=$(awk '$1=="50%"{print $2}' "$w" | to_ms)
wp99=$(awk '$1=="99%"{print $2}' "$w" | to_ms)
werr=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/[^0-9 ]/," "); n+=$1+$2+$3+$4} END{print n+0}' "$w")
printf 'rest_http1\t%s\t%.2f\t%.2f\t%s\n' "${wrps:-NA}" "${wp50:-0}" "${wp99:-0}" "$werr" >> "$RES/table.tsv"

{
  echo "# REST/JSON vs gRPC unary through the tonic-msgpack gateway  $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores=$(nproc)"
  echo "# loader on CPU $LOADGEN_CPUS; upstream (current-thread) + gateway (GATEWAY_THREADS=$GATEWAY_THREADS) on CPU $SUT_CPUS"
  echo "# $CONNS connections; grpc/rest_h2c: h2load -m $STREAMS streams each; grpc_m1: -m 1; rest_http1: wrk (1 in flight per connection)"
  echo "# ${WARMUP}s warm-up + ${DURATION}s each; 32-byte message; p50/p99 from h2load --log-file and wrk --latency"
  column -t -s $'\t' "$RES/table.tsv"
  awk -F'\t' 'NR>1{r[$1]=$2} END{ if (r["grpc"]>0) {
      printf "req/s ratio REST/gRPC: rest_h2c/grpc = %.2f (same protocol and concurrency); rest_http1/grpc_m1 = %.2f (same concurrency)\n", r["rest_h2c"]/r["grpc"], (r["grpc_m1"]>0 ? r["rest_http1"]/r["grpc_m1"] : 0) } }' "$RES/table.tsv"
} | tee "$RES/summary.txt"
log "results in $RES"
