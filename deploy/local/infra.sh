#!/usr/bin/env bash
# Starts PostgreSQL, NATS JetStream and the OpenBao dev server under .taskmesh/ on the stack's own
# ports, reusing any that already run, then provisions databases, roles, Vault secrets, policies
# and AppRoles. Idempotent: run it as often as you like.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$LOGS" "$RUN" "$SECRETS"
chmod 700 "$SECRETS"

pg_ready() { "$(pg_bin pg_isready)" -q -h 127.0.0.1 -p "$PG_PORT"; }
nats_ready() { curl -sf "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" ; }
vault_ready() { BAO_ADDR="$VAULT_ADDR_LOCAL" bao status; }

start_postgres() {
  if pg_ready; then
    refuse_foreign PostgreSQL "$PG_PORT"
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"; return
  fi
  local home data sock
  home="$(pg_home)"; data="$home/data"; sock="$home/run"
  mkdir -p "$home" "$sock"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$home"; fi
  if [ -f "$data/PG_VERSION" ] && [ ! -s "$SECRETS/pg-admin-password" ]; then
    # A cluster outside the clone (see pg_home) left by an earlier clone at this same path, whose
    # .taskmesh went with it: nobody knows its admin password any more. Start it afresh.
    log "PostgreSQL data in $data has no password in this clone (an earlier clone's); initialising anew"
    rm -rf "$data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising PostgreSQL in $data"
    [ -s "$SECRETS/pg-admin-password" ] || (umask 077; random_secret > "$SECRETS/pg-admin-password")
    local pwfile="$home/.initdb-pw"
    (umask 077; cp "$SECRETS/pg-admin-password" "$pwfile")
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pwfile"; fi
    run_pg "$(pg_bin initdb)" -D "$data" -U taskmesh_admin --pwfile="$pwfile" -E UTF8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$LOGS/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed; see $LOGS/initdb.log"; }
    rm -f "$pwfile"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # The server writes its log itself, so the log lives where its user can write: beside the data,
  # linked from .taskmesh/logs.
  local pglog="$home/postgres.log"
  touch "$pglog"; if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pglog"; fi
  [ "$pglog" = "$LOGS/postgres.log" ] || ln -sfn "$pglog" "$LOGS/postgres.log"
  claim_port "$PG_PORT"
  run_pg "$(pg_bin pg_ctl)" -D "$data" -l "$pglog" -w -t 60 start -o \
    "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB" >/dev/null
  wait_for PostgreSQL 60 pg_ready
}

# Every service has its own NATS user (provision.sh puts its password in Vault) and the operator
# one; the server's configuration holds only their bcrypt hashes and permissions (nats-auth.sh).
nats_users() {
  mkdir -p "$SECRETS/nats" "$TM_HOME/nats"
  chmod 700 "$SECRETS/nats"
  local entry name
  for entry in "${SERVICES[@]}" operator; do
    name="${entry%%:*}"
    [ -s "$SECRETS/nats/$name" ] || (umask 077; random_secret > "$SECRETS/nats/$name")
  done
  "$(dirname "$0")/nats-auth.sh" "$TM_HOME/nats/auth.conf" "$SECRETS/nats"
}

start_nats() {
  nats_users
  if nats_ready >/dev/null 2>&1; then
    refuse_foreign NATS "$NATS_PORT"
    log "NATS already running on 127.0.0.1:$NATS_PORT; reloading its users"
    nats-server --signal "reload=$(cat "$RUN/nats.pid")" >/dev/null 2>&1 \
      || log "NATS did not take the reload; restart the stack (make down) to apply its users"
    return
  fi
  claim_port "$NATS_PORT"
  log "starting NATS JetStream on 127.0.0.1:$NATS_PORT (monitoring $NATS_MONITOR_PORT)"
  mkdir -p "$TM_HOME/nats"
  setsid nats-server -c "$TM_HOME/nats/auth.conf" -a 127.0.0.1 -p "$NATS_PORT" \
    -m "$NATS_MONITOR_PORT" -js -sd "$TM_HOME/nats" \
    -P "$RUN/nats.pid" </dev/null >"$LOGS/nats.log" 2>&1 &
  wait_for NATS 60 nats_ready
}

start_vault() {
  if vault_ready >/dev/null 2>&1; then
    refuse_foreign OpenBao "$VAULT_PORT"
    log "OpenBao already running on $VAULT_ADDR_LOCAL"; return
  fi
  claim_port "$VAULT_PORT"
  # The dev server keeps everything in memory: a new one needs a new root token and provisioning.
  log "starting the OpenBao dev server on $VAULT_ADDR_LOCAL"
  # The root token goes to the server in its environment (readable only by this user), never on
  # a command line (readable by every user in ps); the dev server prints it, so its log is 0600;
  # -dev-no-store-token keeps it out of ~/.vault-token.
  (umask 077
   random_secret > "$SECRETS/vault-root-token"
   : > "$LOGS/openbao.log"
   chmod 600 "$LOGS/openbao.log")
  BAO_DEV_ROOT_TOKEN_ID="$(cat "$SECRETS/vault-root-token")" \
    setsid bao server -dev -dev-listen-address="127.0.0.1:$VAULT_PORT" -dev-no-store-token \
    </dev/null >>"$LOGS/openbao.log" 2>&1 &
  echo $! > "$RUN/openbao.pid"
  wait_for OpenBao 60 vault_ready
}

start_postgres
start_nats
start_vault
"$(dirname "$0")/provision.sh"
