#!/usr/bin/env bash
# Runs a Python script of the project with the venv's interpreter (install.sh fills the venv),
# with the stack's settings (CARGO_TARGET_DIR, TASKMESH_HOME) in its environment.
#   venv-run.sh SCRIPT [ARG...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export TASKMESH_HOME="$TM_HOME"
exec "$VENV/bin/python" "$@"
