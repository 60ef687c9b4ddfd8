#!/usr/bin/env bash
# The benchmarks (not tests): `bash bench/run.sh` (full, ~25-30 min on 2 cores, writes docs/benchmarks.md and
# docs/benchmarks.png) or `bash bench/run.sh --quick` (smoke, a few minutes). Needs the venv of
# scripts/up.sh and Debian's mosquitto + mosquitto-clients; installs the optional chart and
# profiler packages (matplotlib, py-spy) into the venv if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/python -m pip install -q -e .; }
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] \
  || { echo "Mosquitto is not installed: apt-get install mosquitto mosquitto-clients" >&2; exit 1; }
command -v mosquitto_sub >/dev/null \
  || { echo "mosquitto_sub is not installed: apt-get install mosquitto-clients" >&2; exit 1; }
.venv/bin/python -c 'import matplotlib' 2>/dev/null \
  || .venv/bin/python -m pip install -q 'matplotlib>=3.8,<4' || echo "no matplotlib: no chart" >&2
[ -x .venv/bin/py-spy ] \
  || .venv/bin/python -m pip install -q 'py-spy>=0.3.14,<1' || echo "no py-spy: no profiles" >&2
exec .venv/bin/python -m bench "$@"
