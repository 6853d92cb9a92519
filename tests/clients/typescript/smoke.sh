#!/usr/bin/env bash
# Generates the TypeScript client of the contracts with `buf generate` and protoc-gen-es (npm, in
# the stack's node directory, where its runtime packages are) and runs a script with it:
#   smoke.sh GATEWAY_BASE_URL ACCESS_TOKEN [SCRIPT [ARGS...]]
# SCRIPT is a file beside this one (default smoke.mjs); it gets the generated directory, the base
# URL, the token and ARGS.
set -euo pipefail
source "$(dirname "$0")/../../../deploy/local/lib.sh"
base="$1"; token="$2"; script="${3:-smoke.mjs}"
shift $(( $# < 3 ? $# : 3 ))
out="$(mktemp -d "$NODE_DIR/generated-XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$ROOT"
buf generate . --template tests/clients/typescript/buf.gen.yaml -o "$out"
cp "tests/clients/typescript/$script" "$out/"
node "$out/$script" "$out/gen" "$base" "$token" "$@"
