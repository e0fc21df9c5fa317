#!/usr/bin/env bash
# The main job: sets up .venv if needed, then evaluates the offline default model.
# With no arguments: the quick start (XQuAD-R, 4 languages, all settings) into runs/quickstart.
# Any arguments are passed to `pyterrier-hybrid evaluate` instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
if [ -z "${LAREQA_DATA_DIR:-}" ] && [ -d "$root/../shared/data" ]; then
  export LAREQA_DATA_DIR="$root/../shared/data"   # offline copy of the benchmark files
fi
if [ "$#" -eq 0 ]; then
  set -- --benchmark xquad-r --languages ar,de,en,zh --out "$root/runs/quickstart"
fi
exec "$root/.venv/bin/pyterrier-hybrid" evaluate "$@"
