#!/usr/bin/env bash
# The crate graph of ARCHITECTURE.md: only these edges between our crates (each may also use
# core), and a runtime without the HTTP server stack. Fails with the offending edge.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [tonic-msgpack-core]=""
  [tonic-msgpack-codegen]="tonic-msgpack-core"
  [tonic-msgpack-macros]="tonic-msgpack-codegen tonic-msgpack-core"
  [tonic-msgpack]="tonic-msgpack-macros tonic-msgpack-core"
  [tonic-msgpack-gateway]="tonic-msgpack tonic-msgpack-core"
  [tonic-msgpack-build]="tonic-msgpack-codegen tonic-msgpack-core"
  [tonic-msgpack-cli]="tonic-msgpack-build tonic-msgpack tonic-msgpack-gateway tonic-msgpack-core"
)
status=0
for crate in "${!allowed[@]}"; do
  direct=$(cargo tree -p "$crate" -e normal --depth 1 --prefix none --offline 2>/dev/null \
    | tail -n +2 | grep -o '^tonic-msgpack[a-z-]*' | sort -u || true)
  for dep in $direct; do
    if [[ " ${allowed[$crate]} " != *" $dep "* ]]; then
      echo "crate graph: $crate must not depend on $dep (see ARCHITECTURE.md)"
      status=1
    fi
  done
done
heavy=$(cargo tree -p tonic-msgpack -e normal --prefix none --offline 2>/dev/null \
  | grep -oE '^(hyper|axum|tower-http|toml) ' | sort -u || true)
if [[ -n "$heavy" ]]; then
  echo "crate graph: the runtime (tonic-msgpack) must not link: $heavy"
  status=1
fi
[[ $status == 0 ]] && echo "crate graph: ok"
exit $status
