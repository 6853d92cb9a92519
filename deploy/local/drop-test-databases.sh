#!/usr/bin/env bash
# Drops the databases and login roles that earlier test runs created (`<prefix>_<32 hex digits>`,
# see taskmesh_testing::TestDatabase): each test makes its own, and without this a long-lived
# local stack grows by every run until the disk is full. The services' own databases are kept.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

psql_admin -t -A <<'SQL' >/dev/null
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname)
  FROM pg_database WHERE datname ~ '_[0-9a-f]{32}$'\gexec
SELECT format('DROP ROLE IF EXISTS %I', rolname)
  FROM pg_roles WHERE rolname ~ '_[0-9a-f]{32}$'\gexec
SQL
rm -rf "$LOGS/tests"
log "dropped the databases and logs of earlier test runs"
