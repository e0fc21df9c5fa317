"""LoRA adapter vs full fine-tuning of the transformer layers at equal budget (issue 16), from committed
files only: docs/lora/seed_summary.csv (the LoRA sweep), docs/budget/seed_summary.csv (the budget
study's full fine-tuning), the runs' train_config.json / training_log.jsonl, and the shipped artifact's
manifest.

    python docs/lora/make_table.py
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
MANIFEST = DOCS.parent / "pyterrier_hybrid" / "artifacts" / "e5-small-hybrid" / "manifest.json"
VARIANTS = ["", "+center", "+zscore"]  # the LoRA sweep ran without WiSE (time)
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def _row(summ: pd.DataFrame, conf: str, measure: str) -> pd.Series:
    return summ[(summ.configuration == conf) & (summ.measure == measure)].iloc[0]


def _fmt(v: float, measure: str) -> str:
    return f"{v:.0f}" if measure == "rank_distance" else f"{v:.3f}"


def main() -> None:
    full, lora = pd.read_csv(DOCS / "budget" / "seed_summary.csv"), pd.read_csv(HERE / "seed_summary.csv")
    print("| training | variant | Mo. | Cr. | Mul. | rank distance |")
    print("|---|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        conf = "hybrid-a0.50" + variant
        for label, summ in (("full (transformer layers)", full), ("LoRA r16", lora)):
            cells = [f"{_fmt(r['mean'], m)} ± {_fmt(r['ci95'], m)}" for m in MEASURES
                     for r in [_row(summ, conf, m)]]
            print(f"| {label} | {variant.lstrip('+') or '-'} | " + " | ".join(cells) + " |")
    print("\nLoRA - full, paired by seed (mean ± 95 % CI, paired t-test df 2, seeds favouring LoRA):\n")
    print("| variant | Δ Mo. | Δ Cr. | Δ Mul. | Δ rank distance |")
    print("|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        conf, cells = "hybrid-a0.50" + variant, []
        for m in MEASURES:
            a, b = (_row(s, conf, m) for s in (lora, full))
            assert ast.literal_eval(a["seeds"]) == ast.literal_eval(b["seeds"])
            d = np.array(ast.literal_eval(a["per_seed"])) - np.array(ast.literal_eval(b["per_seed"]))
            ci = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            p = stats.ttest_rel(ast.literal_eval(a["per_seed"]), ast.literal_eval(b["per_seed"])).pvalue
            better = int((d < 0).sum() if m == "rank_distance" else (d > 0).sum())
            digits = 0 if m == "rank_distance" else 3
            cells.append(f"{d.mean():+.{digits}f} ± {ci:.{digits}f} (p {p:.2g}, {better}/{len(d)})")
        print(f"| {variant.lstrip('+') or '-'} | " + " | ".join(cells) + " |")
    cfg = json.loads(next((HERE / "train").glob("hybrid-a0.50-seed0/train_config.json")).read_text())
    params = cfg["model"]["lora"]["parameters"]
    manifest = json.loads(MANIFEST.read_text())
    print(f"\nSize: LoRA adapter {params:,} parameters = {4 * params / 1e6:.1f} MB fp32 / {2 * params / 1e6:.1f} MB "
          f"bf16; the shipped int8 delta of the full fine-tuning {manifest['delta_bytes'] / 1e6:.1f} MB.")


if __name__ == "__main__":
    main()
