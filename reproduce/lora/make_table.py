"""LoRA adapter vs full fine-tuning of the transformer layers at equal budget (issue 16), from committed
files only: the per-system summaries in docs/lora/sweep.json (the LoRA sweep) and docs/budget/sweep.json
(the budget study's full fine-tuning), the LoRA run's train_config.json and the shipped artifact's
manifest; means, CIs and paired tests by pyterrier_hybrid.experiments.seeds.

    python reproduce/lora/make_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pyterrier_hybrid.experiments.seeds import seed_summary, seed_tests

HERE = Path(__file__).resolve().parents[2] / "docs" / "lora"  # the committed outputs
DOCS = HERE.parent
MANIFEST = DOCS.parent / "pyterrier_hybrid" / "artifacts" / "e5-small-hybrid" / "manifest.json"
VARIANTS = ["", "+center", "+zscore"]  # the LoRA sweep ran without WiSE (time)
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def _summary(folder: Path, prefix: str) -> pd.DataFrame:
    """The trained systems of a sweep's summary, renamed ``<prefix><run>/s<seed>...``."""
    s = pd.DataFrame(json.loads((folder / "sweep.json").read_text())["summary"]).set_index("system")
    s = s[s.index.str.startswith("hybrid-a0.50/")]
    return s.rename(index=lambda name: prefix + name)


def _fmt(v: float, measure: str) -> str:
    return f"{v:.0f}" if measure == "rank_distance" else f"{v:.3f}"


def main() -> None:
    summ = pd.concat([_summary(DOCS / "budget", "full:"), _summary(HERE, "lora:")]).rename_axis("system")
    stats = seed_summary(summ).set_index(["configuration", "measure"])
    print("| training | variant | Mo. | Cr. | Mul. | rank distance |")
    print("|---|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        for label, prefix in (("full (transformer layers)", "full:"), ("LoRA r16", "lora:")):
            cells = [f"{_fmt(r['mean'], m)} ± {_fmt(r['ci95'], m)}" for m in MEASURES
                     for r in [stats.loc[(prefix + "hybrid-a0.50" + variant, m)]]]
            print(f"| {label} | {variant.lstrip('+') or '-'} | " + " | ".join(cells) + " |")
    tests = seed_tests(summ, [(f"lora:hybrid-a0.50{v}", f"full:hybrid-a0.50{v}") for v in VARIANTS])
    print("\nLoRA - full, paired by seed (mean ± 95 % CI, paired t-test df 2, seeds favouring LoRA):\n")
    print("| variant | Δ Mo. | Δ Cr. | Δ Mul. | Δ rank distance |")
    print("|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        g, cells = tests[tests.a == f"lora:hybrid-a0.50{variant}"], []
        for m in MEASURES:
            r, digits = g[g.measure == m].iloc[0], 0 if m == "rank_distance" else 3
            cells.append(f"{r['difference']:+.{digits}f} ± {r['ci95']:.{digits}f} (p {r['p_value']:.2g}, "
                         f"{r['seeds_a_better']}/{r['n_seeds']})")
        print(f"| {variant.lstrip('+') or '-'} | " + " | ".join(cells) + " |")
    cfg = json.loads((HERE / "train" / "hybrid-a0.50-seed0" / "train_config.json").read_text())
    params = cfg["model"]["lora"]["parameters"]
    manifest = json.loads(MANIFEST.read_text())
    print(f"\nSize: LoRA adapter {params:,} parameters = {4 * params / 1e6:.1f} MB fp32 / {2 * params / 1e6:.1f} MB "
          f"bf16; the shipped int8 delta of the full fine-tuning {manifest['delta_bytes'] / 1e6:.1f} MB.")


if __name__ == "__main__":
    main()
