#!/usr/bin/env bash
# Check of the local stack's supervisor (part of `make test`): a process killed with SIGKILL is
# started again within seconds and counted, a second supervised process is never touched, and
# `make down`'s stop path (the `stopping` mark, then SIGTERM to the supervisors) ends both for good.
# Runs against stand-in processes in a scratch TASKMESH_HOME, so it needs no built service.
set -euo pipefail
home="$(mktemp -d)"
export TASKMESH_HOME="$home"
source "$(dirname "$0")/../lib.sh"
mkdir -p "$RUN" "$LOGS"
here="$(cd "$(dirname "$0")/.." && pwd)"
cleanup() {
  touch "$RUN/stopping"
  for name in alpha beta; do
    [ -f "$RUN/$name.supervisor.pid" ] && kill -TERM "$(cat "$RUN/$name.supervisor.pid")" 2>/dev/null
  done
  sleep 0.5
  rm -rf "$home"
}
trap cleanup EXIT

wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; die "check failed: $1 never appeared"; }

"$here/supervise.sh" alpha sleep 600 &
"$here/supervise.sh" beta sleep 600 &
wait_file "$RUN/alpha.pid"; wait_file "$RUN/beta.pid"
alpha="$(cat "$RUN/alpha.pid")"; beta="$(cat "$RUN/beta.pid")"

log "check: kill -9 of a supervised process"
kill -KILL "$alpha"
for _ in $(seq 50); do
  now="$(cat "$RUN/alpha.pid" 2>/dev/null || true)"
  [ -n "$now" ] && [ "$now" != "$alpha" ] && kill -0 "$now" 2>/dev/null && break
  sleep 0.1
done
[ "$now" != "$alpha" ] && kill -0 "$now" 2>/dev/null || die "check failed: alpha was not restarted"
[ "$(cat "$RUN/alpha.restarts")" = 1 ] || die "check failed: the restart was not counted"
kill -0 "$beta" 2>/dev/null && [ "$(cat "$RUN/beta.pid")" = "$beta" ] \
  || die "check failed: beta was touched by alpha's restart"
log "check passed: restarted within $((SECONDS))s, counted, the other process untouched"

log "check: the stop path ends supervision"
touch "$RUN/stopping"
kill -TERM "$(cat "$RUN/alpha.supervisor.pid")" "$(cat "$RUN/beta.supervisor.pid")"
for _ in $(seq 100); do
  kill -0 "$now" 2>/dev/null || kill -0 "$beta" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$now" 2>/dev/null || kill -0 "$beta" 2>/dev/null; then
  die "check failed: a supervised process outlived its supervisor's stop"
fi
sleep 1.5
[ ! -f "$RUN/alpha.pid" ] || ! kill -0 "$(cat "$RUN/alpha.pid")" 2>/dev/null \
  || die "check failed: alpha was started again after the stop"
log "check passed: both stopped and stayed stopped"
