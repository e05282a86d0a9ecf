#!/usr/bin/env bash
# Writes TypeScript with `tonic-msgpack gen typescript` into interop/typescript/generated/ and
# compiles it and the tests with `tsc --strict` into build/ (run by interop/run.sh).
#
#   bash interop/typescript/generate.sh PATH/TO/tonic-msgpack
#
# generated/demo.ts      example-app (Greeter protos + Calculator trait), both clients
# generated/demo-web.ts  the same with `--clients web` (what a browser bundle imports)
# generated/everything.ts tests/proto-e2e's everything.proto (every field kind)
# generated/vectors.ts   cli/tests/data/gen/vectors (named layouts, MagicOnion-style traits)
# generated/names.ts     cli/tests/data/gen/typescript/names (types named like the runtime's,
#                        bool and uint64 map keys)
# generated/named.ts     tests/proto-e2e's named.proto with --key-case camelCase (a oneof in
#                        the named layout)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLI="${1:?usage: generate.sh PATH/TO/tonic-msgpack}"

PROTOS="$(mktemp -d "${TMPDIR:-/tmp}/tonic-msgpack-ts.XXXXXX")"
trap 'rm -rf "$PROTOS"' EXIT
mkdir -p "$PROTOS/demo" "$PROTOS/common/v1"
cp "$ROOT/tests/proto-e2e/proto/demo/everything.proto" "$PROTOS/demo/"
cp "$ROOT/tests/proto-e2e/proto-common/common/v1/common.proto" "$PROTOS/common/v1/"
mkdir -p "$PROTOS/named"
cp "$ROOT/tests/proto-e2e/proto/named.proto" "$PROTOS/named/"

rm -rf "$HERE/generated" "$HERE/build"
mkdir -p "$HERE/generated"
"$CLI" gen typescript "$ROOT/example-app" --out "$HERE/generated/demo.ts"
"$CLI" gen typescript "$ROOT/example-app" --clients web --out "$HERE/generated/demo-web.ts"
"$CLI" gen typescript "$PROTOS" --out "$HERE/generated/everything.ts"
"$CLI" gen typescript "$ROOT/cli/tests/data/gen/vectors" --out "$HERE/generated/vectors.ts"
"$CLI" gen typescript "$ROOT/cli/tests/data/gen/typescript/names" --out "$HERE/generated/names.ts"
"$CLI" gen typescript "$PROTOS/named" --key-case camelCase --clients none --out "$HERE/generated/named.ts"
cd "$HERE"
node_modules/.bin/tsc -p tsconfig.json
echo "tsc --strict: generated/*.ts and the tests compiled into build/"
