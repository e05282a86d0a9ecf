#!/usr/bin/env bash
# greeter.sh — end to end: the example app's Greeter contract (example-app/proto/demo/v1/
# greeter.proto) served by tonic + prost and by tonic-msgpack, generated from the same .proto,
# with the same handlers and runtime (bench/src/bin/greeter_{prost,msgpack}.rs), driven by
# h2load with the same request in each encoding (name "world", count 10).
#
#   prost   : tonic + tonic-prost-build (protobuf)
#   msgpack : tonic + tonic-msgpack-build (MessagePack, MessageCodec)
#
# Scenarios: unary (SayHello, -c 50 -m 10), unary500 (SayHello, -c 500 -m 1) and stream
# (StreamGreetings: one request, 10 replies; -c 50 -m 10). Pinning as bench/gateway.sh: h2load
# (-t 1) on CPU 0, the server (one tokio worker) on CPU 1; a fresh server per run; targets
# interleaved within each repeat; medians over repeats. Every h2load run is time-bounded (-D);
# every process started here is ended by PID.
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-greeter]  DURATION [10]  WARMUP [2]  REPEAT [3]
#   LOADGEN_CPUS [0]  SUT_CPUS [1]  SERVER_THREADS [1]
#   SCENARIOS ["unary unary500 stream"]  TARGETS ["prost msgpack"]  SKIP_INSTALL [0]
#   PORT_BASE [50250]  ports: +1 prost, +2 msgpack
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-greeter}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEAT=${REPEAT:-3}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
SUT_CPUS=${SUT_CPUS:-1}
SERVER_THREADS=${SERVER_THREADS:-1}
SCENARIOS=${SCENARIOS:-"unary unary500 stream"}
TARGETS=${TARGETS:-"prost msgpack"}
SKIP_INSTALL=${SKIP_INSTALL:-0}
PORT_BASE=${PORT_BASE:-50250}
UNARY=/demo.v1.Greeter/SayHello
STREAM=/demo.v1.Greeter/StreamGreetings
STREAM_REPLIES=10

RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES"
log() { printf '[greeter-bench] %s\n' "$*" >&2; }

SUT_PID=""
cleanup() { # end only the process this script started, if still running
  if [ -n "$SUT_PID" ]; then kill "$SUT_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

if [ "$SKIP_INSTALL" != 1 ]; then
  need=()
  command -v h2load  >/dev/null || need+=(nghttp2-client)
  command -v nghttp  >/dev/null || need+=(nghttp2-client)
  command -v taskset >/dev/null || need+=(util-linux)
  command -v ss      >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

log "building greeter_prost and greeter_msgpack (release)"
(cd "$ROOT" && cargo build --release -q -p tonic-msgpack-bench --bin greeter_prost --bin greeter_msgpack)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# Request bodies: one gRPC frame (flag 0, u32 BE length) holding HelloRequest{name: "world",
# count: 10}, as protobuf and as MessagePack (compact: [name, count]).
python3 - "$WORK" "$STREAM_REPLIES" <<'PY'
import struct, sys
work, count = sys.argv[1], int(sys.argv[2])
name = b"world"
bodies = {
    "prost": b"\x0a" + bytes([len(name)]) + name + b"\x10" + bytes([count]),
    "msgpack": b"\x92" + bytes([0xa0 | len(name)]) + name + bytes([count]),
}
for target, msg in bodies.items():
    open(f"{work}/body-{target}.bin", "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY

port_of() { case $1 in prost) echo $((PORT_BASE + 1)) ;; msgpack) echo $((PORT_BASE + 2)) ;; *) log "unknown target $1"; exit 1 ;; esac; }
wait_port() {
  local i
  for i in $(seq 1 100); do ss -Htln "( sport = :$1 )" | grep -q . && return 0; sleep 0.05; done
  log "port $1 did not open"; exit 1
}
start_sut() {
  local port; port=$(port_of "$1")
  taskset -c "$SUT_CPUS" "$TARGET_DIR/release/greeter_$1" "127.0.0.1:$port" "$SERVER_THREADS" >>"$RES/$1.log" 2>&1 &
  SUT_PID=$!
  wait_port "$port"
}
stop_sut() {
  if [ -n "$SUT_PID" ]; then kill "$SUT_PID" 2>/dev/null || true; wait "$SUT_PID" 2>/dev/null || true; fi
  SUT_PID=""
}

# ---------------------------------------------------------------- check (nghttp)
# Each server must answer SayHello and StreamGreetings with grpc-status 0 (10 reply frames)
# and an unknown method with 12.
grpc_status() { # port path body -> grpc-status
  nghttp -v -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" \
    "http://127.0.0.1:$1$2" 2>&1 | sed -n 's/.*grpc-status: \([0-9]*\).*/\1/p' | tail -1
}
frames() { # port path body -> number of gRPC frames in the response body
  nghttp -t 5 -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" "http://127.0.0.1:$1$2" |
    python3 -c '
import struct, sys
data = sys.stdin.buffer.read(); n = 0
while len(data) >= 5:
    size = struct.unpack(">I", data[1:5])[0]; data = data[5 + size:]; n += 1
print(n)'
}
: > "$RES/check.txt"
for t in $TARGETS; do
  start_sut "$t"
  port=$(port_of "$t"); body=$WORK/body-$t.bin
  ok=$(grpc_status "$port" "$UNARY" "$body"); st=$(grpc_status "$port" "$STREAM" "$body")
  neg=$(grpc_status "$port" /demo.v1.Greeter/NoSuchMethod "$body")
  n=$(frames "$port" "$STREAM" "$body")
  echo "$t: SayHello grpc-status=$ok, StreamGreetings grpc-status=$st ($n frames), unknown method grpc-status=$neg" | tee -a "$RES/check.txt" >&2
  stop_sut
  if [ "$ok" != 0 ] || [ "$st" != 0 ] || [ "$neg" != 12 ] || [ "$n" != "$STREAM_REPLIES" ]; then
    log "check FAILED for $t"; exit 1
  fi
done

# ---------------------------------------------------------------- load runs
pct() { # sorted-file p -> value (nearest rank)
  awk -v p="$2" '{a[NR]=$1} END{ if(NR==0){print "NA"; exit} i=int(p*NR+0.999999); if(i<1)i=1; if(i>NR)i=NR; print a[i] }' "$1"
}
bg_busy() { # CPU busy of the whole box over 1 s
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk '{t=$4-$2; printf "%.0f", (t>0?100*($3-$1)/t:0)}'
}

printf 'scenario\ttarget\trep\treq_s\tp50_ms\tp99_ms\tsucceeded\tfailed\tnon2xx\tbg_busy\n' > "$RES/raw.tsv"
for rep in $(seq 1 "$REPEAT"); do
for sc in $SCENARIOS; do
  case $sc in
    unary) METHOD=$UNARY; H2OPTS=(-c 50 -m 10) ;;
    unary500) METHOD=$UNARY; H2OPTS=(-c 500 -m 1) ;;
    stream) METHOD=$STREAM; H2OPTS=(-c 50 -m 10) ;;
    *) log "unknown scenario $sc"; exit 1 ;;
  esac
  # Even repeats run the targets in reverse: a target that always ran right after another
  # (its 500 connections just closed, say) read up to 15% slower here.
  ORDER=$TARGETS
  if [ $((rep % 2)) = 0 ]; then ORDER=$(tr ' ' '\n' <<< "$TARGETS" | tac | tr '\n' ' '); fi
  for t in $ORDER; do
    tag=$sc-$t-r$rep
    bg=$(bg_busy)
    start_sut "$t"
    log "run $tag (${H2OPTS[*]}, ${WARMUP}s warm-up + ${DURATION}s; background busy before run: $bg%)"
    taskset -c "$LOADGEN_CPUS" h2load -D "$DURATION" --warm-up-time "$WARMUP" "${H2OPTS[@]}" -t 1 \
      -H 'content-type: application/grpc' -H 'te: trailers' -d "$WORK/body-$t.bin" \
      --log-file="$RES/$tag.reqlog" \
      "http://127.0.0.1:$(port_of "$t")$METHOD" > "$RES/$tag.h2load.txt" 2>&1 || true
    stop_sut
    out=$RES/$tag.h2load.txt
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$out")
    read -r succ fail < <(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' "$out") || true
    read -r s2 s3 s4 s5 < <(sed -n 's/^status codes: \([0-9]*\) 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3 \4/p' "$out") || true
    non2xx=$(( ${s3:-0} + ${s4:-0} + ${s5:-0} ))
    awk '$2==200{print $3}' "$RES/$tag.reqlog" | sort -n > "$RES/$tag.lat"
    p50=$(pct "$RES/$tag.lat" 0.50); p99=$(pct "$RES/$tag.lat" 0.99)
    p50ms=$(awk -v v="$p50" 'BEGIN{ if(v=="NA") print v; else printf "%.2f", v/1000}')
    p99ms=$(awk -v v="$p99" 'BEGIN{ if(v=="NA") print v; else printf "%.2f", v/1000}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$t" "$rep" "${rps:-NA}" "$p50ms" "$p99ms" \
      "${succ:-NA}" "${fail:-NA}" "$non2xx" "$bg" >> "$RES/raw.tsv"
    rm -f "$RES/$tag.reqlog" "$RES/$tag.lat"
    if [ "${fail:-1}" != 0 ] || [ "$non2xx" != 0 ]; then log "WARNING: $tag had failures (see $out)"; fi
  done
done
done

# ---------------------------------------------------------------- table
{
  echo "# Greeter end to end: tonic + prost vs tonic-msgpack  $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores=$(nproc)  commit=$(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "# $(h2load --version | head -1); pinning: h2load -t1 on CPU $LOADGEN_CPUS; server ($SERVER_THREADS tokio worker) on CPU $SUT_CPUS"
  echo "# each run: ${WARMUP}s warm-up + ${DURATION}s, fresh server per run, targets interleaved; $REPEAT repeat(s); req/s, p50, p99: medians (p50/p99 from h2load --log-file, status 200)"
  echo "# unary: SayHello -c 50 -m 10; unary500: SayHello -c 500 -m 1; stream: StreamGreetings (10 replies) -c 50 -m 10, req/s counts whole calls"
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
      fail[k] += $8; n2[k] += $9; if ($10 + 0 > bg[k] + 0) bg[k] = $10 }
    END {
      for (i = 1; i <= nk; i++) { k = order[i]; R[k] = med(rps[k]); P[k] = med(p99[k]); if (tg[k] == "prost") { base[sc[k]] = R[k]; bp99[sc[k]] = P[k] } }
      printf "%-9s %-8s %9s %15s %8s %8s %9s %10s %7s %7s %4s\n", "scenario", "target", "req/s", "range", "p50_ms", "p99_ms", "vs_prost", "p99/prost", "failed", "non2xx", "bg"
      for (i = 1; i <= nk; i++) { k = order[i]
        r = (base[sc[k]] > 0) ? sprintf("%.2f", R[k] / base[sc[k]]) : "NA"
        q = (bp99[sc[k]] > 0) ? sprintf("%.2f", P[k] / bp99[sc[k]]) : "NA"
        printf "%-9s %-8s %9.0f %7.0f..%-7.0f %8.2f %8.2f %9s %10s %7d %7d %3s%%\n", sc[k], tg[k], R[k], mn[k], mx[k], med(p50[k]), P[k], r, q, fail[k], n2[k], bg[k] }
    }' "$RES/raw.tsv"
  echo
  echo "check (nghttp, before the load runs):"
  cat "$RES/check.txt"
} | tee "$RES/table.txt"
log "results in $RES (raw.tsv = every run)"
