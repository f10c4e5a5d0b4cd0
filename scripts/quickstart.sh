#!/usr/bin/env bash
# The README's first command: install ctrip (pip) and the anvil dev node if they are
# missing, then run the whole payment flow on SQLite with scripts/demo.py.
# Usage: scripts/quickstart.sh [--dir DIR]    (PYTHON=python3.12 to pick an interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=python
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "ctrip needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1)); set PYTHON=..." >&2
  exit 1
}
# Installed already? (Importing from the checkout is not enough: the deps must be there.)
if ! "$PY" -c 'import importlib.metadata as m, standardwebhooks; m.version("ctrip")' >/dev/null 2>&1; then
  echo "installing ctrip and its dependencies (pip install -e '.[test]')" >&2
  "$PY" -m pip install --quiet -e '.[test]'
fi
scripts/install-anvil.sh
exec "$PY" scripts/demo.py "$@"
