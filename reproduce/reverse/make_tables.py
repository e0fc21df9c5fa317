"""The reverse direction's table (train XQuAD-R, evaluate MLQA-R; issue 15), from committed files only:
docs/reverse/seed_summary.csv (the seeded sweep's report, copied from runs/reverse).

    python reproduce/reverse/make_tables.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parents[2] / "docs" / "reverse"  # the committed outputs
#: The paper's Table 1 / Table 2 on MLQA-R (trained on mMARCO, zero-shot): Mo., Cr., Mul., rank distance.
PAPER = {
    ("XLM-R", "X-X-mono"): (0.648, 0.584, 0.473, 288), ("XLM-R", "X-Y"): (0.626, 0.620, 0.508, 227),
    ("XLM-R", "hybrid"): (0.648, 0.623, 0.512, 227), ("LaBSE", "X-X-mono"): (0.681, 0.656, 0.550, 225),
    ("LaBSE", "X-Y"): (0.671, 0.677, 0.576, 198), ("LaBSE", "hybrid"): (0.686, 0.681, 0.579, 195),
}
ROWS = [("base", "untuned", "-"), ("base+center", "untuned", "center"), ("base+zscore", "untuned", "zscore"),
        ("hybrid-a0.50", "hybrid 0.5", "-"), ("hybrid-a0.50+center", "hybrid 0.5", "center"),
        ("hybrid-a0.50+zscore", "hybrid 0.5", "zscore"), ("hybrid-a0.50+wise0.5", "hybrid 0.5", "wise0.5"),
        ("hybrid-a0.50+wise0.5+center", "hybrid 0.5", "wise0.5+center"),
        ("hybrid-a0.50+wise0.5+zscore", "hybrid 0.5", "wise0.5+zscore")]
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def cell(summ: pd.DataFrame, conf: str, measure: str) -> str:
    r = summ[(summ.configuration == conf) & (summ.measure == measure)].iloc[0]
    digits = 0 if measure == "rank_distance" else 3
    return f"{r['mean']:.{digits}f}" + (f" ± {r['ci95']:.{digits}f}" if r.n_seeds > 1 else "")


def main() -> None:
    summ = pd.read_csv(HERE / "seed_summary.csv")
    print("| model | training | variant | Mo. | Cr. | Mul. | rank distance |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (model, strategy), vals in PAPER.items():
        print(f"| {model} (paper, mMARCO) | {strategy} | - | " + " | ".join(
            f"{v:.3f}" if i < 3 else f"{v:.0f}" for i, v in enumerate(vals)) + " |")
    for conf, strategy, variant in ROWS:
        print(f"| e5-small (ours, XQuAD-R) | {strategy} | {variant} | "
              + " | ".join(cell(summ, conf, m) for m in MEASURES) + " |")


if __name__ == "__main__":
    main()
