"""Tables of the WiSE-FT lambda study (issue 15), from committed files only: docs/wise/choices.json (the
lambda each seed's validation questions chose) and docs/wise/summary.csv (every evaluated lambda on
XQuAD-R); means, CIs and paired tests by pyterrier_hybrid.experiments.seeds.

    python reproduce/wise/make_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pyterrier_hybrid.experiments.seeds import seed_summary, seed_tests

HERE = Path(__file__).resolve().parents[2] / "docs" / "wise"  # the committed outputs
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def _name(lam: float, seed: int, cal: str) -> str:
    return "hybrid-a0.50" + ("" if lam == 1 else f"+wise{lam:g}") + f"/s{seed}" + (f"+{cal}" if cal else "")


def _with_chosen(summ: pd.DataFrame, doc: dict) -> pd.DataFrame:
    """``summ`` plus the configuration ``chosen``: each seed's model at the lambda its validation chose."""
    rows = [summ.loc[_name(doc["choices"][str(s)]["chosen"], s, cal)].rename(f"chosen/s{s}" + (f"+{cal}" if cal else ""))
            for cal in ("", "zscore") for s in doc["seeds"]]
    return pd.concat([summ, pd.DataFrame(rows)]).rename_axis("system")


def _cell(r: pd.Series, m: str) -> str:
    digits = 0 if m == "rank_distance" else 3
    return f"{r['mean']:.{digits}f}" + (f" ± {r['ci95']:.{digits}f}" if r["n_seeds"] > 1 else "")


def main() -> None:
    doc = json.loads((HERE / "choices.json").read_text())
    summ = _with_chosen(pd.read_csv(HERE / "summary.csv").set_index("system"), doc)
    stats = seed_summary(summ).set_index(["configuration", "measure"])
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
    chosen = ", ".join(f"{doc['choices'][str(s)]['chosen']:g}" for s in seeds)
    for cal in ("", "zscore"):
        suffix = f"+{cal}" if cal else ""
        rows = [("0 (untuned)", "base"), *((f"{lam:g}", "hybrid-a0.50" + ("" if lam == 1 else f"+wise{lam:g}"))
                                            for lam in curve), (f"chosen on validation ({chosen})", "chosen")]
        for label, conf in rows:
            print(f"| {label} | {cal or '-'} | " + " | ".join(_cell(stats.loc[(conf + suffix, m)], m)
                                                              for m in MEASURES) + " |")
    tests = seed_tests(summ, [("chosen", "hybrid-a0.50+wise0.5"), ("chosen+zscore", "hybrid-a0.50+wise0.5+zscore")])
    print("\nChosen lambda minus lambda 0.5, paired by seed (paired t-test, df 2):\n")
    print("| calibration | Δ Mo. | Δ Cr. | Δ Mul. | Δ rank distance |")
    print("|---|---:|---:|---:|---:|")
    for cal, g in zip(("-", "zscore"), (tests[tests.a == "chosen"], tests[tests.a == "chosen+zscore"]), strict=True):
        cells = []
        for m in MEASURES:
            r, digits = g[g.measure == m].iloc[0], 0 if m == "rank_distance" else 3
            cells.append(f"{r['difference']:+.{digits}f} ± {r['ci95']:.{digits}f} (p {r['p_value']:.2g}, "
                         f"{r['seeds_a_better']}/{r['n_seeds']})")
        print(f"| {cal} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
