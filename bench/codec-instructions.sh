#!/usr/bin/env bash
# codec-instructions.sh — generated proto types through the codecs, against prost: callgrind
# instruction counts (deterministic, so usable on a busy machine) and interleaved wall-time
# minimums, for the small (HelloRequest), medium (Everything) and tree (341-node Tree)
# messages of tests/proto-e2e/src/samples.rs.
#
#   msgpack : tonic_msgpack::MessageCodec (direct MessagePack; what .proto services use)
#   serde   : tonic_msgpack::MsgPackCodec (rmp-serde over the derived serde impls)
#   prost   : tonic-prost's codec (Message::encode into the buffer, Message::decode)
#
# Encode appends to a reused BytesMut (tonic's EncodeBuf); decode reads a Bytes frame (what
# DecodeBuf::copy_to_bytes gives) and drops the value. Instructions per operation = (run with
# N iterations - run with 0) / N. Ratios are prost / codec: above 1 means fewer instructions
# (or less time) than prost.
#
# Env knobs: N [1000] iterations under callgrind; ROUNDS [200] wall-time rounds (0 = skip);
# WALL_CPU [] CPU to pin the wall-time run to (taskset), e.g. 1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-1000}
ROUNDS=${ROUNDS:-200}
WALL_CPU=${WALL_CPU:-}

command -v valgrind >/dev/null || {
  echo "valgrind is needed (apt-get install valgrind)" >&2
  exit 1
}
(cd "$ROOT" && cargo build --release -q -p proto-e2e --example instructions)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/examples/instructions

ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/Collected/ {print $4}'; }

echo "# instructions per operation (callgrind), N=$N; commit $(cd "$ROOT" && git rev-parse --short HEAD)"
printf '%-14s %10s %10s %10s %14s %12s\n' case msgpack serde prost prost/msgpack prost/serde
for m in small medium large; do
  for op in encode decode; do
    declare -A per=()
    for c in msgpack serde prost; do
      zero=$(ir "$BIN" "$c" "$op" "$m" 0)
      full=$(ir "$BIN" "$c" "$op" "$m" "$N")
      per[$c]=$(( (full - zero) / N ))
    done
    awk -v c="$m $op" -v a="${per[msgpack]}" -v s="${per[serde]}" -v p="${per[prost]}" \
      'BEGIN { printf "%-14s %10d %10d %10d %14.2f %12.2f\n", c, a, s, p, p / a, p / s }'
  done
done

if [ "$ROUNDS" != 0 ]; then
  echo
  echo "# wall time: fastest of $ROUNDS interleaved rounds (ns per operation)${WALL_CPU:+, pinned to CPU $WALL_CPU}"
  if [ -n "$WALL_CPU" ]; then
    taskset -c "$WALL_CPU" "$BIN" wall "$ROUNDS"
  else
    "$BIN" wall "$ROUNDS"
  fi
fi
