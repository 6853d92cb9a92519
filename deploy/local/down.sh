#!/usr/bin/env bash
# `make down`: stops a stack left running (supervisors and services, then OpenBao, NATS and
# PostgreSQL).
# With --infra-only, leaves services alone (used by up.sh after it stopped them itself).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

stop_pid() {
  local name="$1" file="$2"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$file"
}

if [ "${1:-}" != "--infra-only" ]; then
  mkdir -p "$RUN"
  # Supervisors first: they stop their process and do not restart it once `stopping` exists.
  touch "$RUN/stopping"
  for name in gateway "${SERVICES[@]%%:*}" maildev; do
    stop_pid "$name supervisor" "$RUN/$name.supervisor.pid"
    stop_pid "$name" "$RUN/$name.pid"
  done
fi
stop_pid OpenBao "$RUN/openbao.pid"
stop_pid NATS "$RUN/nats.pid"
data="$(pg_home)/data"
if [ -f "$data/postmaster.pid" ]; then
  run_pg "$(pg_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null 2>&1 && log "stopped PostgreSQL" || true
fi
