#!/usr/bin/env bash
# Make ./.venv (or the folder given as $1) with a Python >= 3.12 and install the project into it.
#
# Why a script: the project needs Python >= 3.12 (cnfutures-session-timeline uses the `type`
# statement), but on many machines `python3` is older and 3.12+ sits under pyenv, not on the
# default path. This finds the first interpreter that really runs and is new enough: $PYTHON,
# python3.13 / python3.12 / python3 / python on PATH, then pyenv's and uv's installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"

new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local c
  for c in "${PYTHON:-}" python3.14 python3.13 python3.12 python3 python; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && new_enough "$c" && { command -v "$c"; return; }
  done
  local roots=("${PYENV_ROOT:-$HOME/.pyenv}/versions" "$HOME/.local/share/uv/python")
  for c in $(ls -d "${roots[0]}"/3.1[2-9]*/bin/python3 "${roots[1]}"/cpython-3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
    new_enough "$c" && { echo "$c"; return; }
  done
  return 1
}

if [ -x "$VENV/bin/python" ] && new_enough "$VENV/bin/python"; then
  :
else
  PY=$(find_python) || { echo "ghtrader: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)" >&2; exit 2; }
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
