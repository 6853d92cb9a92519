#!/usr/bin/env bash
# The provisioning job of compose.yaml, in two steps (the image's entrypoint):
#
#   keys      before the infrastructure starts: the PostgreSQL admin password and the OpenBao dev
#             root token (volume `provision`, read by those two containers only), one NATS
#             password per service and the broker's authorization block with their bcrypt hashes
#             (volume `nats-auth`, read by NATS). Kept when they exist: a second `up` reuses them.
#   services  once PostgreSQL, NATS and OpenBao are healthy: per service a database and login role
#             with a fresh password, stored in Vault with its NATS login, a read-only policy and an
#             AppRole whose role id and secret id land in volume `approle` (each service mounts
#             it and reads its own two files); the job sealing key and the SMTP server.
#
# The services and their consumers are the local stack's lists (deploy/local/lib.sh), and the
# broker's rules are written by the same nats-auth.sh.
set -euo pipefail
source "$(dirname "$0")/../local/lib.sh"

PROVISION=/provision
NATS_AUTH=/nats-auth
APPROLE=/approle
# The uid the platform's image runs as (distroless `nonroot`).
RUNTIME_UID=65532

keys() {
  umask 077
  [ -s "$PROVISION/pg-admin-password" ] || random_secret > "$PROVISION/pg-admin-password"
  [ -s "$PROVISION/vault-root-token" ] || printf 'dev-%s' "$(random_secret)" > "$PROVISION/vault-root-token"
  # Read by the PostgreSQL and OpenBao containers, whatever user their images run as; no other
  # container mounts this volume.
  chmod 0444 "$PROVISION/pg-admin-password" "$PROVISION/vault-root-token"
  mkdir -p "$PROVISION/nats"
  for entry in "${SERVICES[@]}" operator; do
    service="${entry%%:*}"
    [ -s "$PROVISION/nats/$service" ] || random_secret > "$PROVISION/nats/$service"
  done
  "$(dirname "$0")/../local/nats-auth.sh" "$NATS_AUTH/nats-auth.conf" "$PROVISION/nats"
  # NATS runs as its image's user: it reads the hashes, nobody else's secrets.
  chmod 0644 "$NATS_AUTH/nats-auth.conf"
  log "keys: PostgreSQL admin password, OpenBao root token, NATS logins for ${#SERVICES[@]} services"
}

services() {
  export BAO_ADDR=http://openbao:8200
  BAO_TOKEN="$(cat "$PROVISION/vault-root-token")"
  export BAO_TOKEN
  export PGPASSWORD
  PGPASSWORD="$(cat "$PROVISION/pg-admin-password")"
  psql_job() { psql -X -q -v ON_ERROR_STOP=1 -h postgresql -U taskmesh_admin -d postgres "$@"; }

  auth_methods="$(bao auth list -format=json)"
  grep -q '"approle/"' <<<"$auth_methods" || bao auth enable approle >/dev/null
  for entry in "${SERVICES[@]}"; do
    service="${entry%%:*}"
    provision_service psql_job "$service" "$PROVISION/nats/$service"
    # A container that restarts logs in again with the same secret id: no use count here; the
    # id dies with the dev server (and a real deployment uses the Kubernetes or JWT login).
    bao write "auth/approle/role/$service" token_policies="$service" token_ttl=1h \
      token_max_ttl=24h secret_id_ttl=0 secret_id_num_uses=0 >/dev/null
    mkdir -p "$APPROLE/$service"
    (umask 077
     bao read -field=role_id "auth/approle/role/$service/role-id" > "$APPROLE/$service/role-id"
     bao write -f -field=secret_id "auth/approle/role/$service/secret-id" > "$APPROLE/$service/secret-id")
    chown -R "$RUNTIME_UID:$RUNTIME_UID" "$APPROLE/$service"
    chmod 0500 "$APPROLE/$service"
    log "provisioned $service: database, role, vault secrets, policy and approle"
  done
  read -r key_id key < <(job_key_in_vault_or_new compose)
  put_job_key "$key_id" "$key"
  put_smtp mail 1025 none "taskmesh <notifications@taskmesh.localhost>"
  log "provisioned the job sealing key ($key_id) and the SMTP server (mail:1025)"
}

case "${1:-}" in
  keys) keys ;;
  services) services ;;
  *) die "usage: provision.sh keys|services" ;;
esac
