#!/usr/bin/env bash
# Generates the TypeScript client of the contracts with `buf generate` and protoc-gen-es (npm, in
# the stack's node directory, where its runtime packages are) and runs smoke.mjs with it:
#   smoke.sh GATEWAY_BASE_URL ACCESS_TOKEN
set -euo pipefail
source "$(dirname "$0")/../../../deploy/local/lib.sh"
out="$(mktemp -d "$NODE_DIR/generated-XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$ROOT"
buf generate . --template tests/clients/typescript/buf.gen.yaml -o "$out"
cp tests/clients/typescript/smoke.mjs "$out/"
node "$out/smoke.mjs" "$out/gen" "$1" "$2"
