#!/usr/bin/env bash
# `make up`: installs what is missing, starts PostgreSQL, NATS JetStream and OpenBao under
# .taskmesh/, provisions every service, builds and starts every service logged in to Vault with its
# own AppRole under a supervisor that restarts it when it dies, prints what runs where, and stops it
# all on Ctrl-C.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$(dirname "$0")/install.sh"
"$(dirname "$0")/infra.sh"

# RELEASE=1: optimized builds (for measurements and demos). BENCH=1: limits sized for a load
# tool rather than for the open internet (the gateway's per-user and sign-in rates, tasks per board).
profile=debug
build=(cargo build --workspace --bins)
if [ "${RELEASE:-0}" = 1 ]; then
  profile=release
  build+=(--release)
fi
# The settings BENCH=1 gives process $1, one per line.
bench_settings() {
  [ "${BENCH:-0}" = 1 ] || return 0
  case "$1" in
    gateway) printf '%s\n' TASKMESH_RATE_LIMITS__USER_PER_SECOND=1000000 \
      TASKMESH_RATE_LIMITS__USER_BURST=1000000 TASKMESH_RATE_LIMITS__SIGN_IN_PER_MINUTE=1000000 \
      TASKMESH_RATE_LIMITS__SIGN_IN_BURST=100000 ;;
    tasks) printf '%s\n' TASKMESH_LIMITS__MAX_TASKS_PER_BOARD=10000000 ;;
    scheduler) printf '%s\n' TASKMESH_LIMITS__MAX_SCHEDULES_PER_PROJECT=10000000 ;;
  esac
}
[ "${BENCH:-0}" = 1 ] && log "BENCH=1: rate limits, the tasks-per-board and schedules-per-project quotas lifted for load tests"
BIN="$CARGO_TARGET_DIR/$profile"
log "building the services ($profile)"
"${build[@]}"
# Access tokens are signed with a key provisioning keeps in Vault; the first one is created here
# (the identity service itself may only read it).
"$BIN/identity-keys" ensure --vault-addr "$VAULT_ADDR_LOCAL" \
  --token-file "$SECRETS/vault-root-token" --path taskmesh/identity/signing-keys

# Every process runs under its own supervisor (supervise.sh), which restarts it when it dies; the
# stack stops only on Ctrl-C or `make down`.
rm -f "$RUN/stopping"
stop_all() {
  # A second Ctrl-C, make's SIGTERM or a closed terminal must not cut the cleanup short.
  trap '' INT TERM PIPE
  trap - EXIT
  set +e
  log "stopping"
  "$(dirname "$0")/down.sh"
  exit 0
}
trap stop_all INT TERM EXIT

start_supervised() {
  local name="$1"; shift
  if [ -f "$RUN/$name.supervisor.pid" ] && kill -0 "$(cat "$RUN/$name.supervisor.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$RUN/$name.supervisor.pid")" 2>/dev/null || true
    sleep 1
  fi
  : > "$LOGS/$name.log"
  "$(dirname "$0")/supervise.sh" "$name" "$@" &
}

# The development mail server: the notifications service sends to its SMTP port (provision.sh
# wrote that into Vault), and its web inbox shows what was sent.
start_supervised maildev "$NODE_DIR/node_modules/.bin/maildev" --ip 127.0.0.1 \
  --smtp "$MAIL_SMTP_PORT" --web-ip 127.0.0.1 --web "$MAIL_WEB_PORT" \
  --mail-directory "$TM_HOME/mail" --max-emails 1000
wait_for maildev 60 curl -sf "http://127.0.0.1:$MAIL_WEB_PORT/api/healthz"

for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"; port="${entry##*:}"; admin=$((port + 1000))
  mapfile -t bench_env < <(bench_settings "$service")
  # Only the Vault address and where the AppRole credentials are: the database password is read
  # from Vault by the service itself.
  start_supervised "$service" "$(dirname "$0")/secret-id.sh" "$service" env \
    TASKMESH_VAULT__ADDR="$VAULT_ADDR_LOCAL" \
    TASKMESH_VAULT__AUTH=approle \
    TASKMESH_VAULT__ROLE_ID_FILE="$SECRETS/$service/role-id" \
    TASKMESH_VAULT__SECRET_ID_FILE="$SECRETS/$service/secret-id" \
    TASKMESH_DATABASE__PORT="$PG_PORT" \
    TASKMESH_NATS__URL="nats://127.0.0.1:$NATS_PORT" \
    TASKMESH_GRPC__LISTEN="127.0.0.1:$port" \
    TASKMESH_ADMIN__LISTEN="127.0.0.1:$admin" \
    ${bench_env[@]+"${bench_env[@]}"} \
    "$BIN/$service"
  wait_for "$service" 120 curl -sf "http://127.0.0.1:$admin/readyz"
done

# The gateway: REST/JSON and grpc-web on 8080, native gRPC on 9090, admin on 10090.
mapfile -t bench_env < <(bench_settings gateway)
start_supervised gateway env TASKMESH_SWAGGER_UI_DIR="$NODE_DIR/node_modules/swagger-ui-dist" \
  ${bench_env[@]+"${bench_env[@]}"} "$BIN/gateway"
wait_for gateway 120 curl -sf "http://127.0.0.1:10090/readyz"

cat <<EOF2

  taskmesh is up.

  PostgreSQL   127.0.0.1:$PG_PORT        (data: $(pg_home)/data)
  NATS         nats://127.0.0.1:$NATS_PORT   (monitoring http://127.0.0.1:$NATS_MONITOR_PORT)
  OpenBao      $VAULT_ADDR_LOCAL   (dev server; root token in $SECRETS/vault-root-token)
  Mail         web inbox http://127.0.0.1:$MAIL_WEB_PORT   (maildev; SMTP 127.0.0.1:$MAIL_SMTP_PORT)
EOF2
for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"; port="${entry##*:}"
  printf '  %-12s grpc 127.0.0.1:%s   admin http://127.0.0.1:%s/{healthz,readyz,metrics}   log %s\n' \
    "$service" "$port" "$((port + 1000))" "$LOGS/$service.log"
done
cat <<EOF2
  gateway      REST + grpc-web http://127.0.0.1:8080/v1/...  OpenAPI http://127.0.0.1:8080/openapi.json
               API explorer (Swagger UI) http://127.0.0.1:8080/docs
               gRPC 127.0.0.1:9090 (every service, reflection)  admin http://127.0.0.1:10090  log $LOGS/gateway.log

  Try:  curl -s -X POST http://127.0.0.1:8080/v1/users:register -d '{"username":"ada","email":"ada@example.org","password":"correct horse battery"}'
        curl -s -X POST http://127.0.0.1:8080/v1/sessions:login -d '{"email":"ada@example.org","password":"correct horse battery"}'
        curl -s -X POST http://127.0.0.1:8080/v1/projects -H "authorization: Bearer \$ACCESS_TOKEN" -d '{"displayName":"Demo"}'
        $VENV/bin/grpcurl -plaintext 127.0.0.1:9090 list
  A process that dies is restarted (see .taskmesh/run/<name>.restarts). Ctrl-C or "make down" stops everything.
EOF2

# Stays in the foreground while the supervisors keep the processes up; Ctrl-C stops everything.
while true; do
  sleep 5 & wait $!
done
