#!/usr/bin/env bash
# Idempotent setup: a venv in .venv with the CPU torch build pinned by constraints.txt,
# then this project (editable) with its test extra. Re-running is a no-op unless
# pyproject.toml or constraints.txt changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
venv="$root/.venv"
stamp="$venv/.setup-stamp"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# A local wheel directory (this workplace keeps the CPU torch wheel there) is used when present.
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
echo "setup: installing torch (CPU build, pinned by constraints.txt)" >&2
"${pip[@]}" install "${links[@]}" -c constraints.txt torch
echo "setup: installing pyterrier-hybrid and its test extra" >&2
"${pip[@]}" install "${links[@]}" -c constraints.txt -e ".[test]"
echo "$want" > "$stamp"
