#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first if needed). Extra args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
# Offline benchmark data: ../shared/data beside the checkout unless LAREQA_DATA_DIR is set.
if [ -z "${LAREQA_DATA_DIR:-}" ] && [ -d "$root/../shared/data" ]; then
  export LAREQA_DATA_DIR="$root/../shared/data"
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
# One pytest-xdist worker per core (at most 4; PYTEST_WORKERS overrides, 0 = serial), whole test files
# per worker so that module fixtures are built once; each worker computes on one thread (conftest.py).
workers="${PYTEST_WORKERS:-$(n=$(nproc); echo $((n < 4 ? n : 4)))}"
exec "$root/.venv/bin/python" -m pytest -n "$workers" --dist loadfile "$@"
