#!/usr/bin/env bash
# Check of the local stack's Vault secrets (part of `make test`, against the running stack): the
# root token is on no command line, in no world-readable log and not in ~/.vault-token; every
# service's AppRole secret ids expire and allow a limited number of logins, and a secret id minted
# for a start (secret-id.sh) really stops working after that many.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
export BAO_ADDR="$VAULT_ADDR_LOCAL"
root="$(cat "$SECRETS/vault-root-token")"

log "check: the Vault root token is on no command line"
for cmdline in /proc/[0-9]*/cmdline; do
  if tr '\0' ' ' <"$cmdline" 2>/dev/null | grep -qF -- "$root"; then
    die "check failed: the root token is on the command line of ${cmdline%/cmdline}"
  fi
done

log "check: OpenBao's log is readable by its owner only"
mode="$(stat -c '%a' "$LOGS/openbao.log")"
[ "$mode" = "600" ] || die "check failed: $LOGS/openbao.log has mode $mode"
if [ -f "$HOME/.vault-token" ] && grep -qF -- "$root" "$HOME/.vault-token"; then
  die "check failed: the root token is in ~/.vault-token"
fi

for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"
  ttl="$(BAO_TOKEN="$root" bao read -field=secret_id_ttl "auth/approle/role/$service")"
  uses="$(BAO_TOKEN="$root" bao read -field=secret_id_num_uses "auth/approle/role/$service")"
  [ "$ttl" -gt 0 ] && [ "$uses" -gt 0 ] ||
    die "check failed: $service's secret ids never expire (ttl $ttl, uses $uses)"
done
log "check: every service's secret ids expire ($SECRET_ID_TTL) and allow $SECRET_ID_USES logins"

log "check: a minted secret id allows exactly $SECRET_ID_USES logins"
service="${SERVICES[0]%%:*}"
"$here/secret-id.sh" "$service" true
role_id="$(cat "$SECRETS/$service/role-id")"
login() {
  bao write -format=json auth/approle/login role_id="$role_id" secret_id=- \
    <"$SECRETS/$service/secret-id" >/dev/null 2>&1
}
for n in $(seq "$SECRET_ID_USES"); do login || die "check failed: login $n of $SECRET_ID_USES refused"; done
if login; then die "check failed: login $((SECRET_ID_USES + 1)) with a used-up secret id worked"; fi
# Leave a fresh one for a `make up` running from this clone.
"$here/secret-id.sh" "$service" true
log "vault secrets check passed"
