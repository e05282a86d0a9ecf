#!/usr/bin/env bash
# Cross-language interop suite for tonic-msgpack (wire format v1).
#
#   bash interop/run.sh          # from anywhere
#
# 1. installs the Python client deps into interop/python/.venv and the Node ones
#    with `npm ci` (from the committed lockfile);
# 2. builds example-app and starts `example-app serve` (gateway + both services);
# 3. runs the Python and Node clients against the gateway and against the
#    services' own port; generates TypeScript with `tonic-msgpack gen typescript`,
#    compiles it with `tsc --strict` and calls through the gateway with it;
# 4. starts the Python grpcio Greeter server and runs
#    `example-app check-greeter http://HOST:PORT` against it (the generated Rust
#    client calling a non-Rust server);
# 5. TLS: makes a CA, a server certificate (localhost, 127.0.0.1) and a client
#    certificate with openssl (in the run's temporary directory: throwaway keys,
#    never committed), starts the gateway binary `tonic-msgpack-gateway` twice in
#    front of the services' port, once with [tls] and once with [tls] and
#    client_ca_file (mTLS required), and runs the Python client over
#    grpc.secure_channel(ssl_channel_credentials(root)): the whole suite over
#    TLS, the Greeter and Calculator with a client certificate, and a call
#    without one that must be refused at the handshake;
# 6. browser: generates the page's client (`gen typescript --clients web`), builds
#    example-app/web/ (tsc --strict, esbuild) and drives the page in headless Chromium
#    (interop/browser/page_test.py, selenium + Debian's chromium and chromium-driver),
#    served from another origin than its gateway (CORS);
# 7. prints one line per suite and `interop: N passed, N failed`; exits non-zero
#    if any suite failed. Everything it started is stopped on exit.
#
# Environment (all optional). The default ports are below Linux's ephemeral range (32768-60999
# unless changed): a port in it can be taken at any moment by one of the run's own outgoing
# connections, and the server meant for it then fails to listen (it happened to 50054, the
# mTLS gateway's former port, in a CI run).
#   INTEROP_HOST            127.0.0.1
#   INTEROP_GATEWAY_PORT    25051   gateway (`serve --listen`)
#   INTEROP_SERVICES_PORT   25052   Greeter + Calculator directly (`serve --services-listen`)
#   INTEROP_GREETER_PORT    25060   the Python Greeter server (reverse direction)
#   INTEROP_TLS_PORT        25053   the gateway binary with [tls]
#   INTEROP_MTLS_PORT       25054   the gateway binary with [tls] and client_ca_file
#   INTEROP_GATEWAY_BIN     path to an already built tonic-msgpack-gateway binary
#   INTEROP_READY_TIMEOUT   60      seconds to wait for a server to listen
#   INTEROP_CALL_TIMEOUT    120     seconds for each client run / check-greeter
#   INTEROP_APP_BIN         path to an already built example-app binary (skips cargo build)
#   INTEROP_CLI_BIN         path to an already built tonic-msgpack (CLI) binary
#   INTEROP_EXTERNAL_SERVE  1 = do not start `serve`; use the one already listening
#   INTEROP_SKIP_INSTALL    1 = reuse the existing venv and node_modules as they are
#   PYTHON                  python3  interpreter used to create the venv
#   INTEROP_WEB_PORT        8000    the browser page (http.server; +1: an origin the gateway refuses)
#   INTEROP_WEB_GATEWAY_PORT 25081  another `serve --config example-app/web/gateway.toml` ([cors]
#                                   for the page), services on INTEROP_WEB_GATEWAY_PORT+1
#   INTEROP_BRIDGE_PORT     25073   the protobuf bridge of a second `serve --config` (its
#                                   gateway on INTEROP_BRIDGE_PORT-2, services on -1,
#                                   admin with /openapi.json on +1); the gateway binary with
#                                   descriptors only on +2, its admin on +3
#   INTEROP_TRACE_PORT      25090   the gateway of another `serve`, exporting traces (services
#                                   on +1, the OTLP receiver `otlp_sink` on +2)
#   INTEROP_SINK_BIN        path to an already built `otlp_sink` example binary
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

HOST="${INTEROP_HOST:-127.0.0.1}"
GATEWAY_PORT="${INTEROP_GATEWAY_PORT:-25051}"
SERVICES_PORT="${INTEROP_SERVICES_PORT:-25052}"
GREETER_PORT="${INTEROP_GREETER_PORT:-25060}"
TLS_PORT="${INTEROP_TLS_PORT:-25053}"
MTLS_PORT="${INTEROP_MTLS_PORT:-25054}"
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
  timeout 600 "$VPY" -m pip install --quiet --disable-pip-version-check -r "$HERE/python/requirements-bridge.txt"
  timeout 600 "$VPY" -m pip install --quiet --disable-pip-version-check -r "$HERE/python/requirements-typing.txt"
  log "node: npm ci"
  (cd "$HERE/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  log "typescript: npm ci"
  (cd "$HERE/typescript" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  if ! command -v openssl >/dev/null; then
    log "apt-get install openssl (certificates for the TLS suites)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  log "browser: selenium, npm ci in example-app/web, chromium + chromium-driver"
  timeout 600 "$VPY" -m pip install --quiet --disable-pip-version-check -r "$HERE/browser/requirements.txt"
  (cd "$ROOT/example-app/web" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "apt-get install chromium chromium-driver (the browser page test)"
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
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
if [[ -n "${INTEROP_GATEWAY_BIN:-}" ]]; then
  GATEWAY_BIN="$INTEROP_GATEWAY_BIN"
else
  log "cargo build -p tonic-msgpack-gateway --bin tonic-msgpack-gateway"
  timeout 1800 cargo build -p tonic-msgpack-gateway --bin tonic-msgpack-gateway
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    "$VPY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  GATEWAY_BIN="$TARGET_DIR/debug/tonic-msgpack-gateway"
fi
[[ -x "$GATEWAY_BIN" ]] || { log "no tonic-msgpack-gateway binary at $GATEWAY_BIN"; exit 1; }
if [[ -n "${INTEROP_CLI_BIN:-}" ]]; then
  CLI_BIN="$INTEROP_CLI_BIN"
else
  log "cargo build -p tonic-msgpack-cli --bin tonic-msgpack"
  timeout 1800 cargo build -p tonic-msgpack-cli --bin tonic-msgpack
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    "$VPY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  CLI_BIN="$TARGET_DIR/debug/tonic-msgpack"
fi
[[ -x "$CLI_BIN" ]] || { log "no tonic-msgpack binary at $CLI_BIN"; exit 1; }

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

# `tonic-msgpack gen python` output: demo_contract.py (generated from example-app; the cli tests
# keep it current) and the golden modules of the cli tests pass mypy --strict; the client
# written on the generated code calls every example method and round-trips the Rust bytes.
GEN_PY="$ROOT/cli/tests/data/gen/python"
suite "python generated code: mypy --strict" \
  env MYPYPATH="$GEN_PY" "$VPY" -m mypy --strict --cache-dir "$LOG_DIR/mypy-cache" \
  "$HERE/python/demo_contract.py" "$HERE/python/generated_client.py" \
  "$HERE/python/generated_roundtrip.py" "$GEN_PY/everything.py" "$GEN_PY/vectors.py" \
  "$GEN_PY/named.py"
suite "python generated client -> gateway $HOST:$GATEWAY_PORT" \
  "$VPY" "$HERE/python/generated_client.py" "$HOST:$GATEWAY_PORT"
suite "python generated client -> services $HOST:$SERVICES_PORT" \
  "$VPY" "$HERE/python/generated_client.py" "$HOST:$SERVICES_PORT"
suite "python generated code offline (everything.proto round trip, C# vector bytes)" \
  "$VPY" "$HERE/python/generated_roundtrip.py"

# `tonic-msgpack gen typescript`: the example-app module (both clients, and web only),
# everything.proto's and the vector contract's, written by the CLI into
# interop/typescript/generated/ (not committed) and compiled with `tsc --strict` to JavaScript;
# then every example method through the gateway with the generated grpc-js and gRPC-Web
# clients, and the Rust side's bytes (interop/vectors/) round trip.
suite "typescript generated code: gen typescript + tsc --strict" \
  bash "$HERE/typescript/generate.sh" "$CLI_BIN"
suite "typescript generated clients (grpc-js, gRPC-Web) -> gateway $HOST:$GATEWAY_PORT" \
  node "$HERE/typescript/build/calls.js" "$HOST:$GATEWAY_PORT" --label typescript-gateway
suite "typescript generated code offline (everything.proto and Calculator Rust vectors round trip)" \
  node "$HERE/typescript/build/roundtrip.js"

# the protobuf bridge: a second `serve` whose config has a [protobuf_bridge] section
BRIDGE_PORT="${INTEROP_BRIDGE_PORT:-25073}"
BRIDGE_GATEWAY_PORT=$((BRIDGE_PORT - 2))
BRIDGE_SERVICES_PORT=$((BRIDGE_PORT - 1))
BRIDGE_ADMIN_PORT=$((BRIDGE_PORT + 1))
for port in "$BRIDGE_GATEWAY_PORT" "$BRIDGE_SERVICES_PORT" "$BRIDGE_PORT" "$BRIDGE_ADMIN_PORT"; do
  require_free "$port" INTEROP_BRIDGE_PORT
done
printf '%s\n' "admin_listen = \"$HOST:$BRIDGE_ADMIN_PORT\"" 'openapi_path = "/openapi.json"' \
  '[upstreams."demo.v1.Greeter"]' "endpoints = [\"http://$HOST:$BRIDGE_SERVICES_PORT\"]" \
  '[upstreams."demo.v1.Calculator"]' "endpoints = [\"http://$HOST:$BRIDGE_SERVICES_PORT\"]" \
  '[protobuf_bridge]' "listen = \"$HOST:$BRIDGE_PORT\"" >"$LOG_DIR/bridge.toml"
log "starting example-app serve --config bridge.toml (protobuf bridge on $HOST:$BRIDGE_PORT)"
"$APP" serve --listen "$HOST:$BRIDGE_GATEWAY_PORT" --services-listen "$HOST:$BRIDGE_SERVICES_PORT" \
  --config "$LOG_DIR/bridge.toml" >"$LOG_DIR/bridge-serve.log" 2>&1 </dev/null &
BRIDGE_PID=$!
PIDS+=("$BRIDGE_PID")
wait_port "$HOST" "$BRIDGE_PORT" "$BRIDGE_PID" "$LOG_DIR/bridge-serve.log" "example-app serve (bridge)"
wait_port "$HOST" "$BRIDGE_GATEWAY_PORT" "$BRIDGE_PID" "$LOG_DIR/bridge-serve.log" "example-app serve (bridge)"
suite "python protobuf client (grpcio-tools stubs, reflection) -> bridge $HOST:$BRIDGE_PORT" \
  "$VPY" "$HERE/python/bridge_client.py" "$HOST:$BRIDGE_PORT" --gateway "$HOST:$BRIDGE_GATEWAY_PORT"
suite "node protobuf client (grpc-js + proto-loader, greeter.proto) -> bridge $HOST:$BRIDGE_PORT" \
  node "$HERE/node/bridge_client.js" "$HOST:$BRIDGE_PORT" --label node-bridge
suite "openapi-spec-validator + a REST client driven by the document -> $HOST:$BRIDGE_GATEWAY_PORT" \
  "$VPY" "$HERE/python/openapi_client.py" "$HOST:$BRIDGE_ADMIN_PORT" "$HOST:$BRIDGE_GATEWAY_PORT"

# REST by descriptor: the gateway binary with a descriptor set only (`tonic-msgpack schema` of
# the example's proto and trait; no generated code) in front of the bridge serve's services; the
# OpenAPI-driven REST client calls every route through it.
DYN_PORT=$((BRIDGE_PORT + 2))
DYN_ADMIN_PORT=$((BRIDGE_PORT + 3))
for port in "$DYN_PORT" "$DYN_ADMIN_PORT"; do
  require_free "$port" INTEROP_BRIDGE_PORT
done
"$CLI_BIN" schema --proto "$ROOT/example-app/proto" --traits "$ROOT/example-app/src/calculator.rs" \
  --out "$LOG_DIR/services.binpb" >"$LOG_DIR/schema.log" 2>&1
printf '%s\n' "listen = \"$HOST:$DYN_PORT\"" "admin_listen = \"$HOST:$DYN_ADMIN_PORT\"" \
  "descriptors = [\"$LOG_DIR/services.binpb\"]" 'openapi_path = "/openapi.json"' \
  '[upstreams."demo.v1.Greeter"]' "endpoints = [\"http://$HOST:$BRIDGE_SERVICES_PORT\"]" \
  '[upstreams."demo.v1.Calculator"]' "endpoints = [\"http://$HOST:$BRIDGE_SERVICES_PORT\"]" \
  >"$LOG_DIR/descriptors.toml"
log "starting tonic-msgpack-gateway with descriptors only on $HOST:$DYN_PORT"
"$GATEWAY_BIN" --config "$LOG_DIR/descriptors.toml" >"$LOG_DIR/descriptors-gateway.log" 2>&1 </dev/null &
DYN_PID=$!
PIDS+=("$DYN_PID")
wait_port "$HOST" "$DYN_PORT" "$DYN_PID" "$LOG_DIR/descriptors-gateway.log" "tonic-msgpack-gateway (descriptors only)"
suite "openapi REST client -> gateway binary with descriptors only (REST by descriptor) $HOST:$DYN_PORT" \
  "$VPY" "$HERE/python/openapi_client.py" "$HOST:$DYN_ADMIN_PORT" "$HOST:$DYN_PORT"

# tracing: a grpcio call with a known traceparent through a `serve` whose gateway ([tracing])
# and services (trace layer, OTEL_EXPORTER_OTLP_ENDPOINT) export to the OTLP receiver
# `otlp_sink --print`; trace_client.py finds client -> gateway -> service in its output.
TRACE_PORT="${INTEROP_TRACE_PORT:-25090}"
TRACE_SERVICES_PORT=$((TRACE_PORT + 1))
SINK_PORT=$((TRACE_PORT + 2))
if [[ -n "${INTEROP_SINK_BIN:-}" ]]; then
  SINK_BIN="$INTEROP_SINK_BIN"
else
  log "cargo build -p tonic-msgpack-gateway --example otlp_sink"
  timeout 1800 cargo build -p tonic-msgpack-gateway --example otlp_sink
  TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    "$VPY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  SINK_BIN="$TARGET_DIR/debug/examples/otlp_sink"
fi
[[ -x "$SINK_BIN" ]] || { log "no otlp_sink binary at $SINK_BIN"; exit 1; }
for port in "$TRACE_PORT" "$TRACE_SERVICES_PORT" "$SINK_PORT"; do
  require_free "$port" INTEROP_TRACE_PORT
done
log "starting otlp_sink on $HOST:$SINK_PORT"
"$SINK_BIN" --listen "$HOST:$SINK_PORT" --print >"$LOG_DIR/spans.txt" 2>"$LOG_DIR/otlp_sink.log" </dev/null &
SINK_PID=$!
PIDS+=("$SINK_PID")
wait_port "$HOST" "$SINK_PORT" "$SINK_PID" "$LOG_DIR/otlp_sink.log" "otlp_sink"
printf '%s\n' 'admin_listen = "off"' '[tracing]' 'enabled = true' \
  "otlp_endpoint = \"http://$HOST:$SINK_PORT\"" 'export_interval = "200ms"' >"$LOG_DIR/trace.toml"
log "starting example-app serve --config trace.toml (traces to $HOST:$SINK_PORT)"
OTEL_EXPORTER_OTLP_ENDPOINT="http://$HOST:$SINK_PORT" OTEL_BSP_SCHEDULE_DELAY=200 \
  "$APP" serve --listen "$HOST:$TRACE_PORT" --services-listen "$HOST:$TRACE_SERVICES_PORT" \
  --config "$LOG_DIR/trace.toml" >"$LOG_DIR/trace-serve.log" 2>&1 </dev/null &
TRACE_PID=$!
PIDS+=("$TRACE_PID")
wait_port "$HOST" "$TRACE_PORT" "$TRACE_PID" "$LOG_DIR/trace-serve.log" "example-app serve (tracing)"
suite "python grpcio traceparent -> gateway [tracing] -> traced service, spans at the OTLP receiver" \
  "$VPY" "$HERE/python/trace_client.py" "$HOST:$TRACE_PORT" "$LOG_DIR/spans.txt"

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

# ------------------------------------------------------------------ browser

# example-app/web/ in headless Chromium: served by http.server on WEB_PORT, its gateway (another
# `serve`, with [cors] for that origin) on WEB_GATEWAY_PORT: another origin, so CORS applies.
WEB_PORT="${INTEROP_WEB_PORT:-8000}"
WEB_GATEWAY_PORT="${INTEROP_WEB_GATEWAY_PORT:-25081}"
WEB_SERVICES_PORT=$((WEB_GATEWAY_PORT + 1))
require_free "$WEB_PORT" INTEROP_WEB_PORT
require_free "$((WEB_PORT + 1))" INTEROP_WEB_PORT
require_free "$WEB_GATEWAY_PORT" INTEROP_WEB_GATEWAY_PORT
require_free "$WEB_SERVICES_PORT" INTEROP_WEB_GATEWAY_PORT
WEB_CONFIG="$ROOT/example-app/web/gateway.toml"
if [[ "$HOST:$WEB_PORT" != 127.0.0.1:8000 ]]; then
  # the committed config names the page's default origin; another one needs its own
  printf '%s\n' 'admin_listen = "off"' '[cors]' "allowed_origins = [\"http://$HOST:$WEB_PORT\"]" \
    >"$LOG_DIR/web-gateway.toml"
  WEB_CONFIG="$LOG_DIR/web-gateway.toml"
fi
log "starting example-app serve --config $WEB_CONFIG (the browser page's gateway on $HOST:$WEB_GATEWAY_PORT)"
"$APP" serve --listen "$HOST:$WEB_GATEWAY_PORT" --services-listen "$HOST:$WEB_SERVICES_PORT" \
  --config "$WEB_CONFIG" >"$LOG_DIR/web-serve.log" 2>&1 </dev/null &
WEB_PID=$!
PIDS+=("$WEB_PID")
wait_port "$HOST" "$WEB_GATEWAY_PORT" "$WEB_PID" "$LOG_DIR/web-serve.log" "example-app serve (web)"
suite "browser page build: gen typescript --clients web, tsc --strict, esbuild (example-app/web)" \
  bash -c 'set -e; "$1" gen typescript "$2/example-app" --clients web --out "$2/example-app/web/src/demo.ts"
    cd "$2/example-app/web" && npm run --silent build' _ "$CLI_BIN" "$ROOT"
suite "browser page in headless Chromium at $HOST:$WEB_PORT -> gateway $HOST:$WEB_GATEWAY_PORT (CORS)" \
  "$VPY" "$HERE/browser/page_test.py" --gateway "http://$HOST:$WEB_GATEWAY_PORT" --host "$HOST" \
  --port "$WEB_PORT" --screenshot "$LOG_DIR/browser-page.png"

# ------------------------------------------------------------------ TLS

# Throwaway certificates for this run only (EC P-256): a CA and the gateway's
# certificate for localhost and $HOST; a second CA and a client certificate.
TLS_DIR="$LOG_DIR/tls"
mkdir -p "$TLS_DIR"
make_ca() { # NAME CN
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$2" -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.pem" 2>>"$TLS_DIR/openssl.log"
}
make_leaf() { # NAME CA CN EXTENSIONS
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
    -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.csr" 2>>"$TLS_DIR/openssl.log"
  printf '%b' "$4" >"$TLS_DIR/$1.ext"
  openssl x509 -req -in "$TLS_DIR/$1.csr" -CA "$TLS_DIR/$2.pem" -CAkey "$TLS_DIR/$2.key" \
    -CAcreateserial -days 2 -extfile "$TLS_DIR/$1.ext" -out "$TLS_DIR/$1.pem" 2>>"$TLS_DIR/openssl.log"
}
log "TLS: certificates (openssl) in $TLS_DIR"
make_ca ca "interop test CA"
make_leaf server ca localhost \
  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:$HOST\n"
make_ca client-ca "interop client CA"
make_leaf client client-ca interop-client \
  "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"

# gateway_config PORT EXTRA_TLS_LINES: the binary in front of the services' port.
gateway_config() {
  cat <<EOF
listen = "$HOST:$1"
admin_listen = "off"
grace_period = "1s"
[upstreams."demo.v1.Greeter"]
endpoints = ["http://$HOST:$SERVICES_PORT"]
[upstreams."demo.v1.Calculator"]
endpoints = ["http://$HOST:$SERVICES_PORT"]
[tls]
cert_file = "$TLS_DIR/server.pem"
key_file = "$TLS_DIR/server.key"
$2
EOF
}
gateway_config "$TLS_PORT" "" >"$TLS_DIR/gateway-tls.toml"
gateway_config "$MTLS_PORT" "client_ca_file = \"$TLS_DIR/client-ca.pem\"
client_auth = \"required\"" >"$TLS_DIR/gateway-mtls.toml"
for mode in tls mtls; do
  if [[ $mode == tls ]]; then port=$TLS_PORT; var=INTEROP_TLS_PORT; else port=$MTLS_PORT; var=INTEROP_MTLS_PORT; fi
  require_free "$port" "$var"
  log "starting tonic-msgpack-gateway --config gateway-$mode.toml on $HOST:$port"
  "$GATEWAY_BIN" --config "$TLS_DIR/gateway-$mode.toml" >"$LOG_DIR/gateway-$mode.log" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  wait_port "$HOST" "$port" "$pid" "$LOG_DIR/gateway-$mode.log" "tonic-msgpack-gateway ($mode)"
done

suite "python grpcio secure_channel -> gateway [tls] $HOST:$TLS_PORT" \
  "$VPY" "$HERE/python/client.py" "$HOST:$TLS_PORT" --ca "$TLS_DIR/ca.pem" --label python-tls
suite "python grpcio mTLS (client certificate) -> gateway [tls] client_ca_file $HOST:$MTLS_PORT" \
  "$VPY" "$HERE/python/client.py" "$HOST:$MTLS_PORT" --ca "$TLS_DIR/ca.pem" \
  --cert "$TLS_DIR/client.pem" --key "$TLS_DIR/client.key" --only greeter,calculator --label python-mtls
suite "python grpcio without a client certificate -> refused by $HOST:$MTLS_PORT" \
  "$VPY" "$HERE/python/client.py" "$HOST:$MTLS_PORT" --ca "$TLS_DIR/ca.pem" --expect-refused \
  --label python-mtls-refused

# ------------------------------------------------------------------ summary

log "results:"
for r in "${RESULTS[@]}"; do
  printf '  %s\n' "$r"
done
echo "interop: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
