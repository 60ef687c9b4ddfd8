#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Python 3.11+, then runs
# lint, types and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11 or newer is needed (python3 is $(python3 -V))" >&2; exit 1; }

# Real servers, not mocks: Mosquitto (+ clients for by-hand publishing), PostgreSQL binaries,
# and docker-compose v1 (only to validate docker-compose.yml; no engine is needed).
missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The console shows Chinese labels and emoji; without these fonts screenshots show boxes.
[ -d /usr/share/fonts/opentype/noto ] || missing+=(fonts-noto-cjk)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing ${missing[*]} (Debian packages)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
# The layers of docs/architecture.md (contracts in pyproject.toml, [tool.importlinter]).
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
