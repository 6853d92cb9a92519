#!/usr/bin/env bash
# Gives every service its own database and login role with a fresh random password, stores that
# password in Vault at secret/taskmesh/<service>/database and the service's NATS login (infra.sh)
# at secret/taskmesh/<service>/nats, and creates a read-only policy and an AppRole per service. The
# AppRole role id lands in .taskmesh/secrets/<service>/ for `make up`, which mints a secret id for
# every start of a service (secret-id.sh); no database password is written anywhere else.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

export BAO_ADDR="$VAULT_ADDR_LOCAL"
BAO_TOKEN="$(cat "$SECRETS/vault-root-token")"
export BAO_TOKEN

# Read the list first: with pipefail, `grep -q` closing the pipe early could fail `bao` (SIGPIPE)
# and make an enabled approle look missing.
auth_methods="$(bao auth list -format=json)"
grep -q '"approle/"' <<<"$auth_methods" || bao auth enable approle >/dev/null

for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"
  provision_service psql_admin "$service" "$SECRETS/nats/$service"
  # A secret id logs in at most SECRET_ID_USES times within SECRET_ID_TTL: enough for a day of
  # logins again at the token's maximum lifetime, useless to whoever finds an old one.
  bao write "auth/approle/role/$service" token_policies="$service" token_ttl=1h \
    token_max_ttl=24h secret_id_ttl="$SECRET_ID_TTL" secret_id_num_uses="$SECRET_ID_USES" >/dev/null
  mkdir -p "$SECRETS/$service"
  (umask 077
   bao read -field=role_id "auth/approle/role/$service/role-id" > "$SECRETS/$service/role-id")
  log "provisioned $service: database, role, vault secret, policy and approle"
done

# The key that seals secrets inside jobs, shared by the services that seal and open them. It is
# kept beside the other stack secrets, so what was sealed still opens after Vault (in memory)
# starts again.
key_file="$SECRETS/job-secrets-key"
[ -s "$key_file" ] || (umask 077; printf 'local-%s:%s\n' "$(date +%Y%m%d)" "$(openssl rand -base64 32)" > "$key_file")
key_id="$(cut -d: -f1 "$key_file")"
put_job_key "$key_id" "$(cut -d: -f2- "$key_file" | tr -d '\n')"
log "provisioned the job sealing key ($key_id) for ${JOB_SECRET_SERVICES[*]}"

# Where the notifications service sends email: the development mail server `make up` starts
# (maildev, plain SMTP on this machine only). A real deployment writes its provider's host, port,
# login and `tls = starttls` or `tls` here instead.
put_smtp 127.0.0.1 "$MAIL_SMTP_PORT" none "taskmesh <notifications@taskmesh.localhost>"
log "provisioned the notifications service's SMTP server (127.0.0.1:$MAIL_SMTP_PORT)"
