#!/usr/bin/env bash
# Checks of the local stack itself (part of `make test`):
#  1. it starts from a clone inside a directory other users cannot enter (mode 0700; as root the
#     clone's PostgreSQL runs as `postgres`, which cannot enter it), on ports of its own;
#  2. a second clone pointed at this clone's running stack stops with a message that names the
#     owner and what to do, instead of failing on a missing secret.
# The second clone is this repository's HEAD with the working tree's deploy/local scripts on top.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

parent="$(mktemp -d "${HOME:-/tmp}/.taskmesh-clone-check.XXXXXX")"
chmod 700 "$parent"
clone="$parent/clone"
cleanup() {
  set +e
  env -u TASKMESH_HOME TASKMESH_PG_PORT="$pg" TASKMESH_NATS_PORT="$nats" \
    TASKMESH_NATS_MONITOR_PORT="$monitor" TASKMESH_VAULT_PORT="$vault" \
    bash "$clone/deploy/local/down.sh" >/dev/null 2>&1
  rm -rf "$parent" "/var/tmp/taskmesh-$(printf '%s' "$clone" | md5sum | cut -c1-10)"
}
pg="$(free_port)"; nats="$(free_port)"; monitor="$(free_port)"; vault="$(free_port)"
trap cleanup EXIT
git clone -q "$ROOT" "$clone"
cp "$ROOT"/deploy/local/*.sh "$clone/deploy/local/"

log "check: a stack from a clone in a mode-0700 directory ($parent) as $(id -un)"
env -u TASKMESH_HOME -u CARGO_TARGET_DIR TASKMESH_VENV="$VENV" TASKMESH_NODE_DIR="$NODE_DIR" \
  TASKMESH_PG_PORT="$pg" TASKMESH_NATS_PORT="$nats" TASKMESH_NATS_MONITOR_PORT="$monitor" \
  TASKMESH_VAULT_PORT="$vault" bash "$clone/deploy/local/infra.sh" >"$parent/infra.log" 2>&1 \
  || { cat "$parent/infra.log"; die "check failed: the stack did not start from $clone"; }
PGPASSWORD="$(cat "$clone/.taskmesh/secrets/pg-admin-password")" psql -X -q -t -A -h 127.0.0.1 \
  -p "$pg" -U taskmesh_admin -d projects -c 'SELECT 1' | grep -qx 1 \
  || die "check failed: the clone's PostgreSQL does not serve its provisioned databases"
[ -s "$clone/.taskmesh/logs/postgres.log" ] \
  || die "check failed: the clone's PostgreSQL log is not readable from .taskmesh/logs"
log "check passed: PostgreSQL, NATS and OpenBao of the 0700 clone started and were provisioned"

log "check: a second clone meets this clone's running stack on the default ports"
if out="$(env -u TASKMESH_HOME TASKMESH_VENV="$VENV" TASKMESH_NODE_DIR="$NODE_DIR" \
  TASKMESH_PG_PORT="$PG_PORT" TASKMESH_NATS_PORT="$NATS_PORT" \
  TASKMESH_NATS_MONITOR_PORT="$NATS_MONITOR_PORT" TASKMESH_VAULT_PORT="$VAULT_PORT" \
  bash "$clone/deploy/local/infra.sh" 2>&1)"; then
  die "check failed: the second clone used another clone's stack without a word"
fi
grep -q "belongs to the stack of the clone at $ROOT" <<<"$out" \
  || { printf '%s\n' "$out"; die "check failed: the refusal does not name the owning clone"; }
grep -q "TASKMESH_PG_PORT" <<<"$out" || die "check failed: the refusal does not say how to pick other ports"
log "check passed: the second clone was told which clone owns the stack and what to do"
