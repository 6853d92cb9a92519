#!/usr/bin/env bash
# Provisions a cluster for taskmesh, run by an operator with kubectl access and a Vault (or
# OpenBao) administrator token. What it does, per service of deploy/local/lib.sh's SERVICES:
#
#   PostgreSQL  a database and login role with a fresh random password
#   Vault       the password at secret/taskmesh/<service>/database and the service's NATS login at
#               .../nats; a policy reading secret/taskmesh/<service>/* only; a role of the
#               Kubernetes auth method bound to the service's ServiceAccount in the namespace and
#               to the audience `vault` of its projected token (deploy/k8s/base), so each pod logs
#               in as its own service and nothing else
#   and once:   the job sealing key for the services that seal and open job secrets, the SMTP
#               server of the notifications service
#
# With the dev overlay (PostgreSQL, NATS and OpenBao inside the cluster) it also makes the two
# Secrets those need before they start, which no manifest holds: `postgresql-admin` (the admin
# password) and `nats-auth` (the broker's users, bcrypt hashes, from deploy/local/nats-auth.sh),
# reads the dev server's root token from its log, and reaches OpenBao and PostgreSQL through
# `kubectl port-forward` and `kubectl exec`.
#
#   deploy/k8s/provision.sh --dev                  after `kubectl apply -k deploy/k8s/overlays/dev`
#   BAO_ADDR=... BAO_TOKEN=... PGHOST=... PGUSER=... PGPASSWORD=... NATS_PASSWORDS=DIR \
#   SMTP_HOST=... SMTP_PORT=... SMTP_FROM=... deploy/k8s/provision.sh
#                                                  against managed infrastructure (prod overlay);
#                                                  NATS_PASSWORDS holds one file per service with the
#                                                  password of its NATS user (nats-auth.sh writes
#                                                  that user list for your broker)
#
# Options: --namespace NS (taskmesh), --kubernetes-host URL (what Vault calls for TokenReview;
# https://kubernetes.default.svc for a Vault inside the cluster). Idempotent: passwords are
# replaced, everything else is written again. Not run by the project's tests, which have no
# cluster (docs/deploy.md says what is tested instead).
set -euo pipefail
source "$(dirname "$0")/../local/lib.sh"

namespace=taskmesh
kubernetes_host=https://kubernetes.default.svc
dev=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) dev=1 ;;
    --namespace) namespace="$2"; shift ;;
    --kubernetes-host) kubernetes_host="$2"; shift ;;
    *) die "unknown option $1 (see the comment at the top of $0)" ;;
  esac
  shift
done
k() { kubectl --namespace "$namespace" "$@"; }
work="$(mktemp -d)"
cleanup() { [ -n "${forward:-}" ] && kill "$forward" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ "$dev" = 1 ]; then
  # The Secrets the dev infrastructure waits for; kept when they exist (data already made with
  # them), except that a missing NATS user is added.
  if ! k get secret postgresql-admin >/dev/null 2>&1; then
    k create secret generic postgresql-admin --from-literal=password="$(random_secret)" >/dev/null
    log "made Secret postgresql-admin"
  fi
  NATS_PASSWORDS="$work/nats"
  mkdir -m 700 "$NATS_PASSWORDS"
  for entry in "${SERVICES[@]}" operator; do
    service="${entry%%:*}"
    existing="$(k get secret nats-passwords -o "jsonpath={.data.$service}" 2>/dev/null | base64 -d || true)"
    printf '%s' "${existing:-$(random_secret)}" > "$NATS_PASSWORDS/$service"
  done
  k create secret generic nats-passwords --from-file="$NATS_PASSWORDS" --dry-run=client -o yaml | k apply -f - >/dev/null
  "$(dirname "$0")/../local/nats-auth.sh" "$work/auth.conf" "$NATS_PASSWORDS"
  k create secret generic nats-auth --from-file=auth.conf="$work/auth.conf" --dry-run=client -o yaml | k apply -f - >/dev/null
  log "made Secrets nats-passwords and nats-auth (${#SERVICES[@]} service users and operator)"

  k rollout status statefulset/openbao --timeout=300s >/dev/null
  k rollout status statefulset/postgresql --timeout=300s >/dev/null
  BAO_TOKEN="$(k logs statefulset/openbao | sed -n 's/^Root Token: //p' | tail -n 1)"
  [ -n "$BAO_TOKEN" ] || die "the OpenBao dev server's log has no root token"
  port=$((20000 + RANDOM % 20000))
  k port-forward statefulset/openbao "$port:8200" >/dev/null 2>&1 &
  forward=$!
  BAO_ADDR="http://127.0.0.1:$port"
  export BAO_ADDR BAO_TOKEN
  for _ in $(seq 50); do bao status >/dev/null 2>&1 && break; sleep 0.2; done
  psql_admin_cluster() { k exec -i statefulset/postgresql -- psql -X -q -v ON_ERROR_STOP=1 -U taskmesh_admin -d postgres; }
  SMTP_HOST="${SMTP_HOST:-mail}" SMTP_PORT="${SMTP_PORT:-1025}"
else
  : "${BAO_ADDR:?set BAO_ADDR}" "${BAO_TOKEN:?set BAO_TOKEN}" "${NATS_PASSWORDS:?set NATS_PASSWORDS}"
  : "${SMTP_HOST:?set SMTP_HOST}" "${SMTP_PORT:?set SMTP_PORT}"
  export BAO_ADDR BAO_TOKEN
  psql_admin_cluster() { psql -X -q -v ON_ERROR_STOP=1 -d postgres; }
fi

auth_methods="$(bao auth list -format=json)"
grep -q '"kubernetes/"' <<<"$auth_methods" || bao auth enable kubernetes >/dev/null
# Inside the cluster Vault checks tokens with its own service account (TokenReview); outside,
# give it a reviewer token and the cluster's CA with `bao write auth/kubernetes/config` yourself.
bao write auth/kubernetes/config kubernetes_host="$kubernetes_host" >/dev/null
kv_mounts="$(bao secrets list -format=json)"
grep -q '"secret/"' <<<"$kv_mounts" || bao secrets enable -path=secret kv-v2 >/dev/null

for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"
  [ -s "$NATS_PASSWORDS/$service" ] || die "no NATS password for $service in $NATS_PASSWORDS"
  provision_service psql_admin_cluster "$service" "$NATS_PASSWORDS/$service"
  bao write "auth/kubernetes/role/$service" bound_service_account_names="$service" \
    bound_service_account_namespaces="$namespace" audience=vault token_policies="$service" \
    token_ttl=1h token_max_ttl=24h >/dev/null
  log "provisioned $service: database, role, vault secrets, policy and kubernetes login"
done

read -r key_id key < <(job_key_in_vault_or_new cluster)
put_job_key "$key_id" "$key"
put_smtp "$SMTP_HOST" "$SMTP_PORT" "${SMTP_TLS:-none}" "${SMTP_FROM:-taskmesh <notifications@taskmesh.localhost>}"
log "provisioned the job sealing key ($key_id) and the SMTP server ($SMTP_HOST:$SMTP_PORT)"
# The first access-token signing key, with identity's key tool (the service may only read it).
keys_tool="$(command -v identity-keys || ls "$CARGO_TARGET_DIR"/{release,debug}/identity-keys 2>/dev/null | head -n 1 || true)"
[ -x "$keys_tool" ] || die "identity-keys not found: \`cargo build --release --bin identity-keys\` first"
(umask 077; printf '%s' "$BAO_TOKEN" > "$work/token")
"$keys_tool" ensure --vault-addr "$BAO_ADDR" --token-file "$work/token" --path taskmesh/identity/signing-keys
log "the identity service's signing key is in Vault; \`identity-keys rotate\` makes the next"
