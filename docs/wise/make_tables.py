"""Tables of the WiSE-FT lambda study (issue 15), from committed files only: docs/wise/choices.json (the
lambda each seed's validation questions chose) and docs/wise/summary.csv (every lambda on XQuAD-R).

    python docs/wise/make_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def _name(lam: float, seed: int, cal: str) -> str:
    return "hybrid-a0.50" + ("" if lam == 1 else f"+wise{lam:g}") + f"/s{seed}" + (f"+{cal}" if cal else "")


def _mean_ci(v: np.ndarray, digits: int) -> str:
    ci = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.{digits}f} ± {ci:.{digits}f}"


def main() -> None:
    doc = json.loads((HERE / "choices.json").read_text())
    summ = pd.read_csv(HERE / "summary.csv").set_index("system")
    grid, curve, seeds = doc["grid"], doc["curve"], doc["seeds"]
    print("Validation (MLQA-R, each run's 115 held-out questions, pool of their paragraphs): criterion = mean of "
          "Mo. / Cr. / Mul. mAP\n")
    print("| seed | " + " | ".join(f"lambda {lam:g}" for lam in grid) + " | chosen |")
    print("|---|" + "---:|" * (len(grid) + 1))
    for s in seeds:
        c = doc["choices"][str(s)]
        print(f"| {s} | " + " | ".join(f"{c['scores'][f'{lam:g}']['criterion']:.4f}" for lam in grid)
              + f" | {c['chosen']:g} |")
    print("\nXQuAD-R (all 11 languages), mean ± 95 % CI over seeds; lambda 0 = untuned\n")
    print("| lambda | calibration | Mo. | Cr. | Mul. | rank distance |")
    print("|---|---|---:|---:|---:|---:|")
    for cal in ("", "zscore"):
        base = "base" + (f"+{cal}" if cal else "")
        print(f"| 0 (untuned) | {cal or '-'} | " + " | ".join(
            f"{summ.loc[base, m]:.{0 if m == 'rank_distance' else 3}f}" for m in MEASURES) + " |")
        for lam in curve:
            vals = [np.array([summ.loc[_name(lam, s, cal), m] for s in seeds]) for m in MEASURES]
            print(f"| {lam:g} | {cal or '-'} | " + " | ".join(
                _mean_ci(v, 0 if m == "rank_distance" else 3) for v, m in zip(vals, MEASURES, strict=True)) + " |")
        chosen = [doc["choices"][str(s)]["chosen"] for s in seeds]
        vals = [np.array([summ.loc[_name(lam, s, cal), m] for s, lam in zip(seeds, chosen, strict=True)])
                for m in MEASURES]
        print(f"| chosen on validation ({', '.join(f'{x:g}' for x in chosen)}) | {cal or '-'} | " + " | ".join(
            _mean_ci(v, 0 if m == "rank_distance" else 3) for v, m in zip(vals, MEASURES, strict=True)) + " |")


def paired() -> None:
    """The validation-chosen lambda minus the fixed 0.5, paired by seed (mean ± 95 % CI, p, seeds in favour)."""
    doc = json.loads((HERE / "choices.json").read_text())
    summ = pd.read_csv(HERE / "summary.csv").set_index("system")
    seeds = doc["seeds"]
    chosen = [doc["choices"][str(s)]["chosen"] for s in seeds]
    print("\nChosen lambda minus lambda 0.5, paired by seed (paired t-test, df 2):\n")
    print("| calibration | Δ Mo. | Δ Cr. | Δ Mul. | Δ rank distance |")
    print("|---|---:|---:|---:|---:|")
    for cal in ("", "zscore"):
        cells = []
        for m in MEASURES:
            a = np.array([summ.loc[_name(lam, s, cal), m] for s, lam in zip(seeds, chosen, strict=True)])
            b = np.array([summ.loc[_name(0.5, s, cal), m] for s in seeds])
            d, digits = a - b, 0 if m == "rank_distance" else 3
            p = stats.ttest_rel(a, b).pvalue
            better = int((d < 0).sum() if m == "rank_distance" else (d > 0).sum())
            cells.append(f"{'+' if d.mean() >= 0 else ''}{_mean_ci(d, digits)} (p {p:.2g}, {better}/{len(d)})")
        print(f"| {cal or '-'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
    paired()
