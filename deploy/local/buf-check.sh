#!/usr/bin/env bash
# Contract checks: `buf lint` (its PROTOVALIDATE rule compiles every buf.validate rule), then
# `buf breaking` against the previous commit (or against HEAD when
# the contracts have uncommitted changes). Skipped when there is no earlier commit with a buf.yaml.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

buf lint
log "buf lint: clean"

against=""
if [ -n "$(git status --porcelain -- proto buf.yaml 2>/dev/null)" ]; then
  against="HEAD"
elif git rev-parse -q --verify HEAD~1 >/dev/null 2>&1; then
  against="HEAD~1"
fi
if [ -n "$against" ] && git cat-file -e "$against:buf.yaml" 2>/dev/null; then
  # The earlier contracts are built from an export of that commit with this clone's
  # .taskmesh/protovalidate beside them: buf.yaml names it a module, and it is not in git.
  earlier="$(mktemp -d)"
  trap 'rm -rf "$earlier"' EXIT
  git archive "$against" | tar -x -C "$earlier"
  mkdir -p "$earlier/.taskmesh"
  ln -s "$ROOT/.taskmesh/protovalidate" "$earlier/.taskmesh/protovalidate"
  buf build "$earlier" -o "$earlier/earlier.binpb"
  # Both sides as images: a workspace input and an image name their files differently.
  buf build -o "$earlier/current.binpb"
  buf breaking "$earlier/current.binpb" --against "$earlier/earlier.binpb"
  log "buf breaking against $against ($(git rev-parse --short "$against")): no breaking change"
else
  log "buf breaking: skipped (no earlier commit with contracts)"
fi
