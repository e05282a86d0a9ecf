#!/usr/bin/env bash
# abuse.sh — the gateway-isolation attack set against release builds of the gateway, on
# loopback only, while a well-behaved client measures what the attacks cost everyone else.
#
# Systems under test (both in front of one upstream, `abuse upstream`, serving abuse.Echo):
#   grpc : the shipped binary, target/release/tonic-msgpack-gateway --config <toml>
#          (routes /abuse.Echo/... by upstream name; no REST routes)
#   rest : `abuse rest-gateway --config <toml>`, the same gateway library and runtime with typed
#          REST routes (GET /v1/echo/{message}, POST /abuse.Echo/Echo), for the REST attacks
# Both use the default [limits] and [rest] settings (EXTRA_TOML appends to their config).
#
# For each attack: fresh gateways, `abuse steady` alone for as long as the attack will last
# (BASELINE; p99 before), the gateway's RSS, then `abuse steady` and the attack together for
# DURATION seconds, SETTLE seconds of rest, the RSS again and whether the gateway process is
# still alive (with FRESH=0 the gateways live on from attack to attack, and only a dead one is
# started again). The steady client makes RATE unary calls a second on one connection, keeps
# a server stream (a message every 100 ms) and a bidi stream (an echo every 200 ms) open on
# connections of their own and, against the rest gateway, also makes REST calls over HTTP/1.1.
#
# Targets (issue 11): 100% well-behaved success, streams unbroken, RSS after within 10% of
# before, p99 during at most 3x before, process alive.
#
# Every client run is time-bounded (timeout); every process started here is ended by PID on
# exit. Needs only cargo, bash, coreutils (taskset from util-linux when present).
#
# Env knobs (defaults in brackets):
#   WORK [/tmp/tonic-msgpack-abuse]  scratch dir (configs, logs, results)
#   BASELINE [the attack's duration]  DURATION [10]  SETTLE [3]  seconds: a baseline as long
#     as the attack gives both p99s the same number of calls (a 5 s baseline's p99 was the 10th-
#     worst of 1,000 calls against the 20th-worst of 2,000 during, and swung 0.30-0.85 ms)
#   SLOW_DURATION [15]  seconds of the slowloris attack: longer than the gateway's 10 s header
#                       and sniff timeouts, so their closes show
#   RATE [200]  unary calls a second of the steady client
#   ATTACKS ["deep-query header-flood header-flood-rest reset-storm vanish no-read slowloris
#            held-streams conn-flood heavy-rest"]
#   SUT_CPUS [1]  upstream and gateways;  LOADGEN_CPUS [0]  steady client and attacks
#                 (empty: no pinning); the attacks run under `nice -n ATTACK_NICE` [10] so
#                 they do not steal the steady client's CPU
#   STEADY_PRIO ["chrt -f 10" where allowed, else none]  runs the steady client (before and
#               during) at real-time priority: nice alone did not keep the attack off its CPU
#               (header-flood kept CPU 0 99% busy, the gateway's CPU 18%, and the steady p99 of
#               4.97 ms was the client waiting for its own CPU; 1.12 ms under chrt). An attacker
#               on another machine takes no CPU from the well-behaved client; the gateway's CPU is
#               what the run measures
#   UPSTREAM_PRIO [the same]  the upstream's priority on the gateways' CPU: it stands for services
#               on machines of their own. An attacked gateway keeps its CPU busy (the throttled
#               attacker's work fills every gap, as it should), and a normal-priority upstream on
#               the same CPU then waits for the kernel's scheduler on every call (header-flood,
#               steady p99 3.46 ms with the upstream at normal priority, 0.57 ms under chrt)
#   FRESH [1]  start the gateways afresh for every attack, so each row's RSS is that attack's
#              (peak: the kernel's VmHWM, the highest RSS since the gateway started);
#              0: one gateway process of each kind takes every attack in turn (a repeated
#              attack, ATTACKS="held-streams held-streams", then tells retention from a leak)
#   EXTRA_TOML []  appended to both gateways' config, e.g. $'[limits]\nmax_in_flight = 20000'
#   GATEWAY_BIN [the workspace's release build]  another build of the stand-alone gateway (e.g. the
#               base commit's, copied elsewhere) for a before/after of the `binary` rows
#   SLOW_MS []  the steady client lists each call slower than this many ms (with when it started)
#               in the attack's .err file, during the attack: tells one stall from a spread
#   SKIP_BUILD [0]  1: use the binaries already built
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/tonic-msgpack-abuse}
BASELINE=${BASELINE:-}
DURATION=${DURATION:-10}
SETTLE=${SETTLE:-3}
SLOW_DURATION=${SLOW_DURATION:-15}
RATE=${RATE:-200}
ATTACKS=${ATTACKS:-"deep-query header-flood header-flood-rest reset-storm vanish no-read slowloris held-streams conn-flood heavy-rest"}
SUT_CPUS=${SUT_CPUS-1}
LOADGEN_CPUS=${LOADGEN_CPUS-0}
ATTACK_NICE=${ATTACK_NICE:-10}
if [ -z "${STEADY_PRIO+set}" ]; then
  STEADY_PRIO=""; chrt -f 10 true 2>/dev/null && STEADY_PRIO="chrt -f 10"
fi
UPSTREAM_PRIO=${UPSTREAM_PRIO-$STEADY_PRIO}
read -r -a PRIO_STEADY <<< "$STEADY_PRIO"
read -r -a PRIO_UP <<< "$UPSTREAM_PRIO"
FRESH=${FRESH:-1}
EXTRA_TOML=${EXTRA_TOML:-}
SKIP_BUILD=${SKIP_BUILD:-0}
SLOW_MS=${SLOW_MS:-}

RUN=$WORK/run
RES=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN" "$RES"

log() { printf '[abuse] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- cleanup
UP_PID=""; GRPC_PID=""; REST_PID=""; CLIENT_PIDS=""
cleanup() { # end only the processes this script started; SIGKILL for any that ignore SIGTERM
  local p i left
  for p in $CLIENT_PIDS $GRPC_PID $REST_PID $UP_PID; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 1 30); do
    left=""
    for p in $CLIENT_PIDS $GRPC_PID $REST_PID $UP_PID; do alive "$p" && left=1; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  for p in $CLIENT_PIDS $GRPC_PID $REST_PID $UP_PID; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- binaries
if [ "$SKIP_BUILD" != 1 ]; then
  log "building tonic-msgpack-gateway and the abuse example (release)"
  (cd "$ROOT" && cargo build --release -q -p tonic-msgpack-gateway --bin tonic-msgpack-gateway --example abuse)
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
GATEWAY_BIN=${GATEWAY_BIN:-$TARGET_DIR/release/tonic-msgpack-gateway}
ABUSE_BIN=$TARGET_DIR/release/examples/abuse
[ -x "$GATEWAY_BIN" ] && [ -x "$ABUSE_BIN" ] || { log "binaries missing under $TARGET_DIR/release"; exit 1; }

# Room for the connection flood (the attack caps itself at the soft limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIN_SUT=(); PIN_LOAD=()
if command -v taskset >/dev/null; then
  [ -n "$SUT_CPUS" ] && PIN_SUT=(taskset -c "$SUT_CPUS")
  [ -n "$LOADGEN_CPUS" ] && PIN_LOAD=(taskset -c "$LOADGEN_CPUS")
else
  log "taskset not found: running unpinned"
fi

# ---------------------------------------------------------------- process control
alive() { # pid: running and not a zombie (a process gone between two reads is not alive)
  local status
  [ -n "$1" ] && status=$(cat "/proc/$1/status" 2>/dev/null) && ! grep -q '^State:[[:space:]]*Z' <<< "$status"
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; } # peak RSS so far
wait_addr() { # file pid -> the address after "listening on "
  local i a
  for i in $(seq 1 100); do
    a=$(sed -n 's/^listening on //p' "$1")
    if [ -n "$a" ]; then echo "$a"; return 0; fi
    alive "$2" || break
    sleep 0.1
  done
  return 1
}
stop_pid() { # end one of our processes and reap it
  local p=$1 i
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for i in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

start_upstream() { # on UP_ADDR again when it is set, so the gateways' configs stay valid
  "${PIN_SUT[@]}" "${PRIO_UP[@]}" "$ABUSE_BIN" upstream --listen "${UP_ADDR:-127.0.0.1:0}" > "$RUN/upstream.out" 2>> "$RUN/upstream.err" &
  UP_PID=$!
  UP_ADDR=$(wait_addr "$RUN/upstream.out" "$UP_PID") || { log "upstream did not start"; exit 1; }
  cat > "$RUN/gateway.toml" <<EOF
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
grace_period = "1s"
[upstreams."abuse.Echo"]
endpoints = ["http://$UP_ADDR"]
$EXTRA_TOML
EOF
}
start_gateway() { # grpc | rest
  local out=$RUN/$1-gateway.out pid addr
  if [ "$1" = grpc ]; then
    "${PIN_SUT[@]}" "$GATEWAY_BIN" --config "$RUN/gateway.toml" > "$out" 2>> "$RUN/grpc-gateway.err" &
  else
    "${PIN_SUT[@]}" "$ABUSE_BIN" rest-gateway --config "$RUN/gateway.toml" > "$out" 2>> "$RUN/rest-gateway.err" &
  fi
  pid=$!
  addr=$(wait_addr "$out" "$pid") || { log "$1 gateway did not start (see $RUN/$1-gateway.err)"; exit 1; }
  if [ "$1" = grpc ]; then GRPC_PID=$pid; GRPC_ADDR=$addr; else REST_PID=$pid; REST_ADDR=$addr; fi
}
ensure_running() {
  if ! alive "$UP_PID"; then
    [ -z "$UP_PID" ] || { log "upstream died; restarting it"; wait "$UP_PID" 2>/dev/null || true; }
    start_upstream
  fi
  alive "$GRPC_PID" || start_gateway grpc
  alive "$REST_PID" || start_gateway rest
}
restart_gateways() { stop_pid "$GRPC_PID"; stop_pid "$REST_PID"; GRPC_PID=""; REST_PID=""; ensure_running; }

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< "$1" | head -1; }

# ---------------------------------------------------------------- attacks
attack_args() { # name -> "sut|abuse arguments"
  case $1 in
    deep-query)        echo "rest|deep-query" ;;
    header-flood)      echo "grpc|header-flood" ;;
    header-flood-rest) echo "rest|header-flood --kinds rest" ;;
    reset-storm)       echo "grpc|reset-storm" ;;
    vanish)            echo "grpc|vanish" ;;
    no-read)           echo "grpc|no-read" ;;
    slowloris)         echo "grpc|slowloris" ;;
    held-streams)      echo "grpc|held-streams" ;;
    conn-flood)        echo "grpc|conn-flood" ;;
    heavy-rest)        echo "rest|heavy-rest" ;;
    *) return 1 ;;
  esac
}

printf 'attack\tgateway\tsuccess_pct\tstreams\tcodes\tp99_before_ms\tp99_during_ms\tratio\trss_before_kb\trss_after_kb\talive\tverdict\tbaseline_success_pct\trss_peak_kb\n' > "$RES/raw.tsv"
: > "$RES/attacker.txt"

start_upstream
ensure_running
log "upstream $UP_ADDR, gateway (binary) $GRPC_ADDR, gateway (REST) $REST_ADDR; results in $RES"

for name in $ATTACKS; do
  spec=$(attack_args "$name") || { log "unknown attack $name"; exit 1; }
  sut=${spec%%|*}; read -r -a args <<< "${spec#*|}"
  [ "$FRESH" = 1 ] && restart_gateways
  ensure_running
  if [ "$sut" = grpc ]; then pid=$GRPC_PID; addr=$GRPC_ADDR; steady_flags=(); label="binary"
  else pid=$REST_PID; addr=$REST_ADDR; steady_flags=(--rest); label="REST example"; fi

  secs=$DURATION; [ "$name" = slowloris ] && secs=$SLOW_DURATION
  LIMIT=$((secs + 30)) # no client outlives this
  base_secs=${BASELINE:-$secs}
  log "$name ($label gateway $addr): ${base_secs}s baseline, ${secs}s attack"
  before=$(timeout -k 5 $((base_secs + 30)) "${PIN_LOAD[@]}" "${PRIO_STEADY[@]}" "$ABUSE_BIN" steady --addr "$addr" \
    --duration "$base_secs" --rate "$RATE" "${steady_flags[@]}" 2>> "$RES/$name.err" || true)
  rss_before=$(rss_kb "$pid")

  timeout -k 5 "$LIMIT" "${PIN_LOAD[@]}" "${PRIO_STEADY[@]}" "$ABUSE_BIN" steady --addr "$addr" --duration "$secs" \
    --rate "$RATE" "${steady_flags[@]}" ${SLOW_MS:+--slow-ms "$SLOW_MS"} > "$RES/$name.steady" 2>> "$RES/$name.err" &
  spid=$!
  timeout -k 5 "$LIMIT" "${PIN_LOAD[@]}" nice -n "$ATTACK_NICE" "$ABUSE_BIN" "${args[@]}" --addr "$addr" \
    --duration "$secs" > "$RES/$name.attack" 2>> "$RES/$name.err" &
  apid=$!
  CLIENT_PIDS="$spid $apid"
  wait "$spid" || true
  wait "$apid" || true
  CLIENT_PIDS=""
  sleep "$SETTLE"

  during=$(cat "$RES/$name.steady")
  if alive "$pid"; then
    alive_text=yes; rss_after=$(rss_kb "$pid"); rss_peak=$(hwm_kb "$pid")
  else
    code=0; wait "$pid" 2>/dev/null || code=$?
    alive_text="no (exit $code)"; rss_after=0; rss_peak=0
    tail -n 5 "$RUN/$sut-gateway.err" > "$RES/$name.death" || true
    why=$(grep -m1 -oE 'overflowed its stack|panicked at [^ ]*|out of memory|Killed' "$RES/$name.death" || true)
    [ -z "$why" ] || alive_text="no (exit $code: $why)"
    log "$name: the gateway died (exit $code); last lines in $RES/$name.death; restarting it"
  fi
  echo "before: $before" > "$RES/$name.before"

  success=$(field "$during" success_pct); streams=$(field "$during" streams); codes=$(field "$during" codes)
  p99b=$(field "$before" p99_ms); p99d=$(field "$during" p99_ms); base_success=$(field "$before" success_pct)
  [ -n "$success" ] || { success=NA; streams="NA"; codes="no result"; }
  verdict=$(awk -v s="$success" -v st="$streams" -v b="$p99b" -v d="$p99d" -v rb="$rss_before" -v ra="$rss_after" -v al="$alive_text" 'BEGIN {
      bad = ""
      if (s != "100.00") bad = bad " success"
      if (st != "ok") bad = bad " streams"
      if (b + 0 <= 0 || d + 0 > 3 * b) bad = bad " p99"
      if (rb + 0 <= 0 || ra + 0 > 1.1 * rb) bad = bad " RSS"
      if (al != "yes") bad = bad " alive"
      print (bad == "" ? "yes" : "no:" bad) }')
  ratio=$(awk -v b="$p99b" -v d="$p99d" 'BEGIN { if (b + 0 > 0 && d != "") printf "%.1f", d / b; else print "NA" }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$success" "$streams" "$codes" \
    "${p99b:-NA}" "${p99d:-NA}" "$ratio" "$rss_before" "$rss_after" "$alive_text" "$verdict" "${base_success:-NA}" "$rss_peak" >> "$RES/raw.tsv"
  printf -- '- %s: %s\n' "$name" "$(sed 's/^attack [^ ]* //' "$RES/$name.attack" 2>/dev/null | head -1)" >> "$RES/attacker.txt"
  log "$name: success ${success}% streams $streams, p99 ${p99b:-NA} -> ${p99d:-NA} ms, RSS $rss_before -> peak $rss_peak -> $rss_after kB, alive $alive_text"
done

# ---------------------------------------------------------------- table
{
  echo "# tonic-msgpack gateway under attack  $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores=$(nproc)  commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# each attack: $([ "$FRESH" = 1 ] && echo "fresh gateway, ")steady baseline $([ -n "$BASELINE" ] && echo "of ${BASELINE}s" || echo "as long as the attack"), then ${DURATION}s attack + steady (slowloris ${SLOW_DURATION}s), RSS ${SETTLE}s after; steady: $RATE unary/s + server stream + bidi stream (+ REST calls on the REST gateway)"
  echo "# pinning: upstream${UPSTREAM_PRIO:+ ($UPSTREAM_PRIO)} + gateways on CPU ${SUT_CPUS:-any}; steady${STEADY_PRIO:+ ($STEADY_PRIO)} + attack (nice $ATTACK_NICE) on CPU ${LOADGEN_CPUS:-any}; default [limits]/[rest]${EXTRA_TOML:+ + EXTRA_TOML}"
  echo
  echo "| attack | gateway | well-behaved success % | streams | p99 before → during (ratio) | RSS before → peak → after (MB) | alive | meets target |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' 'NR > 1 {
      succ = $3; if ($5 != "-" && $5 != "") succ = succ " (" $5 ")"
      p99 = $6 " → " $7 " ms (" $8 "×)"; if ($13 != "100.00") p99 = p99 " [baseline success " $13 "%]"
      printf "| %s | %s | %s | %s | %s | %.1f → %.1f → %.1f | %s | %s |\n", $1, $2, succ, $4, p99, $9 / 1024, $14 / 1024, $10 / 1024, $11, $12 }' "$RES/raw.tsv"
  echo
  echo "What the attacker saw:"
  echo
  cat "$RES/attacker.txt"
} | tee "$RES/table.md"
log "results in $RES (raw.tsv, table.md, per attack: .steady .before .attack .err)"
