"""The tables of docs/study.md (budget study), from the committed files of this folder only.

    python reproduce/budget/make_tables.py > /tmp/tables.md
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parents[2] / "docs" / "budget"  # the committed outputs
#: The paper's Table 1 / Table 2 (XQuAD-R): Mo., Cr., Mul., rank distance.
PAPER = {
    ("XLM-R", "X-X-mono"): (0.792, 0.674, 0.547, 410), ("XLM-R", "X-Y"): (0.755, 0.700, 0.593, 295),
    ("XLM-R", "hybrid"): (0.798, 0.705, 0.593, 287), ("LaBSE", "X-X-mono"): (0.808, 0.752, 0.652, 262),
    ("LaBSE", "X-Y"): (0.801, 0.762, 0.679, 225), ("LaBSE", "hybrid"): (0.817, 0.767, 0.682, 221),
}
STRATEGIES = {"x-x-mono": "X-X-mono", "x-y": "X-Y", "hybrid-a0.50": "hybrid 0.5"}
VARIANTS = ["", "+center", "+zscore", "+wise0.5", "+wise0.5+center", "+wise0.5+zscore"]
MEASURES = ["mono_map", "cross_map", "multi_map", "rank_distance"]


def cell(summ: pd.DataFrame, conf: str, measure: str) -> str:
    r = summ[(summ.configuration == conf) & (summ.measure == measure)]
    if r.empty:
        return "-"
    r = r.iloc[0]
    digits = 0 if measure == "rank_distance" else 3
    if r.n_seeds < 2:
        return f"{r['mean']:.{digits}f}"
    return f"{r['mean']:.{digits}f} ± {r['ci95']:.{digits}f}"


def table_measures(summ: pd.DataFrame) -> None:
    """Table 1 + 2: the paper's rows, then ours per variant."""
    print("### Table 1 + 2: mAP and rank distance (XQuAD-R, mean ± 95 % CI over 3 seeds)\n")
    print("| model | training | variant | Mo. | Cr. | Mul. | rank distance |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (model, strat), vals in PAPER.items():
        print(f"| {model} (paper) | {strat} | - | {vals[0]:.3f} | {vals[1]:.3f} | {vals[2]:.3f} | {vals[3]} |")
    for v in VARIANTS:
        conf = "base" + v
        if (summ.configuration == conf).any():
            print(f"| e5-small (ours) | untuned | {v.lstrip('+') or '-'} | "
                  + " | ".join(cell(summ, conf, m) for m in MEASURES) + " |")
    for v in VARIANTS:
        for s, label in STRATEGIES.items():
            if (summ.configuration == s + v).any():
                print(f"| e5-small (ours) | {label} | {v.lstrip('+') or '-'} | "
                      + " | ".join(cell(summ, s + v, m) for m in MEASURES) + " |")


def table_deltas(tests: pd.DataFrame) -> None:
    """Hybrid minus each baseline, paired by seed (the paper's deltas for reference)."""
    print("\n### Deltas: hybrid minus each baseline (paired by seed; the paper's deltas for reference)\n")
    print("| comparison | variant | Δ Mo. | Δ Cr. | Δ Mul. | Δ rank distance |")
    print("|---|---|---:|---:|---:|---:|")
    for base, label in (("X-X-mono", "x-x-mono"), ("X-Y", "x-y")):
        for model in ("XLM-R", "LaBSE"):
            h, b = PAPER[(model, "hybrid")], PAPER[(model, base)]
            print(f"| {model} (paper): hybrid - {base} | - | {h[0] - b[0]:+.3f} | {h[1] - b[1]:+.3f} | "
                  f"{h[2] - b[2]:+.3f} | {h[3] - b[3]:+d} |")
        seeds = tests[(tests.unit == "seed") & (tests.b.str.replace(r"\+.*", "", regex=True) == label)]
        for v in VARIANTS:
            rows = seeds[seeds.a == "hybrid-a0.50" + v].set_index("measure")
            if rows.empty:
                continue
            cells = []
            for m in MEASURES:
                r = rows.loc[m]
                d = 0 if m == "rank_distance" else 3
                cells.append(f"{r.difference:+.{d}f} ± {r.ci95:.{d}f} (p {r.p_value:.2g}, {int(r.seeds_a_better)}/3)")
            print(f"| ours: hybrid - {base} | {v.lstrip('+') or '-'} | " + " | ".join(cells) + " |")


def table_questions(tests: pd.DataFrame) -> None:
    """Tests with the question as the unit: hybrid vs each baseline, then within a model."""
    print("\n### Question as the unit (hybrid vs each baseline; values averaged over pairs and seeds)\n")
    q = tests[(tests.unit == "question") & tests.a.str.startswith("hybrid") & ~tests.b.str.startswith("hybrid")]
    q = q[q.b.str.match(r"^(x-x-mono|x-y)")]
    print(q[["a", "b", "setting", "difference", "ci95", "p_value", "+", "-"]].to_markdown(index=False, floatfmt=".4g"))
    print("\n### Within a model (question as the unit): calibration, interpolation, training\n")
    w = tests[(tests.unit == "question") & (tests.a.str.replace(r"\+.*", "", regex=True)
                                            == tests.b.str.replace(r"\+.*", "", regex=True))]
    w = pd.concat([w, tests[(tests.unit == "question") & (tests.b == "base") & ~tests.a.str.startswith("base")]])
    w = w[w.setting == "multi"] if "setting" in w else w
    print(w[["a", "b", "setting", "mean_a", "mean_b", "difference", "ci95", "p_value"]]
          .to_markdown(index=False, floatfmt=".4g"))


def table_languages_and_runs(doc: dict) -> None:
    """Per query language (paper Tables 3/5 layout) and the training runs, from sweep.json."""
    by_lang = pd.DataFrame(doc["by_language"])
    for v in ("", "+wise0.5+center"):
        confs = [s + v for s in STRATEGIES]
        sub = by_lang[by_lang.configuration.isin(confs)]
        if sub.empty:
            continue
        wide = sub.pivot_table(index="query_lang", columns="configuration", values=["mono", "cross", "multi"])
        wide = wide.reindex(columns=[(m, c) for c in confs for m in ("mono", "cross", "multi")])
        wide.columns = [f"{STRATEGIES[c.split('+')[0]]} {m}" for m, c in wide.columns]
        wide.loc["mean"] = wide.mean()
        print(f"\n### Per query language (paper Tables 3/5 layout), variant {v.lstrip('+') or 'none'}, mean of 3 seeds\n")
        print(wide.to_markdown(floatfmt=".3f"))
    print("\n### Training runs\n")
    rows = [{"run": n, "seed": r["seed"], "mono/cross batches": f"{r['batches']['mono']}/{r['batches']['cross']}",
             "train s": r["train_seconds"], "final loss": r["final_loss"],
             "val loss (40/80/120)": "/".join(f"{v:.3f}" for v in r["eval_losses"].values())}
            for n, r in doc["runs"].items()]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))


def main() -> None:
    tests = pd.read_csv(HERE / "tests.csv")
    table_measures(pd.read_csv(HERE / "seed_summary.csv"))
    table_deltas(tests)
    table_questions(tests)
    table_languages_and_runs(json.loads((HERE / "sweep.json").read_text()))


if __name__ == "__main__":
    main()
