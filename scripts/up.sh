#!/usr/bin/env bash
# Installs the project into .venv and starts the whole street on this machine: broker
# (Mosquitto if installed, else the embedded pure-Python broker), backend, gates, console.
# Extra arguments go to `python -m stack up` (e.g. --speed 60).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11 or newer is needed (python3 is $(python3 -V))" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/python -m stack up "$@"
