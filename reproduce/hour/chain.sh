#!/usr/bin/env bash
# Issue 26's chain of runs (docs/hour/README.md sections 1b and 2), one process per run, resumable:
# every step skips what DOCS already records (objectives/NAME.json, final/runs/SYSTEM/), so the chain
# can be restarted on a new machine of the same CPU kind from the committed files alone.
#
#   CODE=/path/to/frozen/worktree RUNS=~/hybrid-runs/hour DOCS=/path/to/checkout/docs/hour \
#     setsid nohup bash reproduce/hour/chain.sh >> ~/hybrid-runs/chain.log 2>&1 &
#
# CODE: a worktree of the commit every run of the comparison trains with (the package is imported
# from there; docs/hour/README.md names the commit). The scripts run from this folder.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CODE="${CODE:?set CODE to the frozen worktree the runs train with}"
RUNS="${RUNS:-$HOME/hybrid-runs/hour}"
DOCS="${DOCS:?set DOCS to the docs/hour folder the results are recorded in}"
PY="${PY:-python}"
ROOT="$RUNS/train-mlqa-r"
export PYTHONPATH="$CODE${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
cd "$CODE"  # python -c puts the working directory first on sys.path
[ "$($PY -c 'import pyterrier_hybrid, os; print(os.path.dirname(os.path.dirname(pyterrier_hybrid.__file__)))')" = "$CODE" ] ||
  { echo "chain: pyterrier_hybrid is not imported from $CODE" >&2; exit 2; }

step() {
  echo "== $(date -u +%FT%TZ) $*"
  "$PY" "$here/$1" "${@:2}" --docs "$DOCS" || { echo "== FAILED: $*"; exit 1; }
}

step objectives.py train "$ROOT" --only hybrid
step objectives.py score "$ROOT" --only hybrid
# CANDIDATES: the training order of section 1b's candidates (the order is no part of the rule: every
# candidate is scored before the choice); default the table's order
for cand in ${CANDIDATES:-translation multipos neg-query neg-mix lang-weights}; do
  step objectives.py train "$ROOT" --only "$cand"
  step objectives.py score "$ROOT" --only "$cand"
done
step objectives.py score "$ROOT"   # objectives.json: the choice (validation only)
step final.py score "$ROOT" --seeds 0   # hybrid and the objective at seed 0 are trained already
for seed in 0 1 2; do
  for run in x-x-mono x-y hybrid-a0.50 objective secondary; do
    step final.py train "$ROOT" --seeds "$seed" --only "$run"
    step final.py score "$ROOT" --seeds "$seed"
  done
done
step final.py evaluate "$ROOT"
echo "== $(date -u +%FT%TZ) chain done"
