#!/usr/bin/env bash
# Contract checks: `buf lint`, then `buf breaking` against the previous commit (or against HEAD when
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
  buf breaking --against ".git#ref=$against"
  log "buf breaking against $against ($(git rev-parse --short "$against")): no breaking change"
else
  log "buf breaking: skipped (no earlier commit with contracts)"
fi
