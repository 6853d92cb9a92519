#!/usr/bin/env bash
# Runs one process of the local stack and restarts it when it dies, as compose or Kubernetes would:
#   supervise.sh NAME COMMAND [ARGS...]
# The process's pid is in .taskmesh/run/NAME.pid, its output in .taskmesh/logs/NAME.log, and the
# number of restarts in .taskmesh/run/NAME.restarts. Restarts back off from 1 s to 30 s and the
# backoff starts over once the process has stayed up for a minute. SIGTERM to the supervisor stops
# the process (SIGTERM, then SIGKILL after 15 s) and ends supervision.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

name="$1"; shift
child=""
stop() {
  trap '' TERM INT
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$child" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$child" 2>/dev/null
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.supervisor.pid"
  exit 0
}
# HUP too: a closed terminal ends the supervisor, and the process must not outlive it.
trap stop TERM INT HUP
trap '' PIPE
echo $$ > "$RUN/$name.supervisor.pid"

restarts=0
backoff=1
echo 0 > "$RUN/$name.restarts"
while true; do
  started_at=$SECONDS
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  child=$!
  echo "$child" > "$RUN/$name.pid"
  wait "$child" 2>/dev/null
  code=$?
  [ -f "$RUN/stopping" ] && stop
  if [ $((SECONDS - started_at)) -ge 60 ]; then backoff=1; fi
  restarts=$((restarts + 1))
  echo "$restarts" > "$RUN/$name.restarts"
  log "$name exited (status $code); restart $restarts in ${backoff}s (log $LOGS/$name.log)"
  sleep "$backoff" & wait $!
  [ -f "$RUN/stopping" ] && stop
  backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
done
