#!/usr/bin/env bash
# Mints a fresh AppRole secret id for SERVICE (TTL and use limit from its role, see provision.sh)
# into .taskmesh/secrets/SERVICE/secret-id (0600), then runs COMMAND. The supervisor runs the
# services through it, so every start, and every restart, logs in with a new secret id, as an
# orchestrator that hands out wrapped secret ids would.
#   secret-id.sh SERVICE COMMAND [ARGS...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
service="$1"; shift
(umask 077
 BAO_ADDR="$VAULT_ADDR_LOCAL" BAO_TOKEN="$(cat "$SECRETS/vault-root-token")" \
   bao write -f -field=secret_id "auth/approle/role/$service/secret-id" \
   > "$SECRETS/$service/secret-id.new"
 mv "$SECRETS/$service/secret-id.new" "$SECRETS/$service/secret-id")
exec "$@"
