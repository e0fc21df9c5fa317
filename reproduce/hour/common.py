"""What the CPU-hour scripts share (issue 26, docs/hour/README.md): the training options, where the
runs live, and the scoring on a run's own held-out MLQA-R validation questions."""
import dataclasses
import json
from pathlib import Path
from typing import Any

from pyterrier_hybrid.experiments.alpha_sweep import study_config
from pyterrier_hybrid.experiments.wise import validation_questions
from pyterrier_hybrid.study import evaluate
from pyterrier_hybrid.train_config import TrainConfig

HOUR_STEPS = 600
SETTINGS = ("mono_map", "cross_map", "multi_map")
TIE = 0.002


def base_config(steps: int, **options: Any) -> TrainConfig:
    """The budget study's options (docs/budget) at ``steps`` steps, a checkpoint every 120 steps."""
    return study_config(steps=steps, save_steps=120, keep="last", batch_mix="exact", freeze_embeddings=True,
                        precision="bf16", optimizer="adamw_torch_fused", keep_checkpoints=False, **options)


def hybrid_config(steps: int, seed: int = 0, **options: Any) -> TrainConfig:
    """Hybrid 0.5 at ``steps`` steps (``options``: the objective being tried)."""
    return dataclasses.replace(base_config(steps, **options), sampling="hybrid", alpha=0.5, seed=seed)


def hybrid_run(root: Path, steps: int) -> Path:
    """Hybrid 0.5 seed 0 at ``steps``: the hour run itself at 600 steps, else a fresh run of its own."""
    return root / ("hybrid-a0.50-seed0" if steps == HOUR_STEPS else f"b{steps}/hybrid-a0.50-seed0")


def chosen_budget(docs: Path) -> int:
    """The budget recorded by validate.py (``budget_choice.json``); an error if it is not there yet."""
    path = docs / "budget_choice.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run reproduce/hour/validate.py first (the budget comes before objectives)")
    return int(json.loads(path.read_text())["chosen_steps"])


def score(models: dict[str, str], split_run: Path, *, backend: str = "auto") -> tuple[dict, dict, dict]:
    """Scores of ``{name: model}`` on ``split_run``'s validation questions (pool: their paragraphs in
    all training languages): ``({name: {mono_map, cross_map, multi_map, criterion}},
    {name: {lang: {mono, cross, multi}}}, info)``."""
    source, languages, pids = validation_questions(split_run)
    res = evaluate(list(models.values()), benchmark=source, languages=languages or None, questions=pids,
                   pool="paragraphs", names=list(models), backend=backend, verbose=False)
    summary = res.summary()
    scores = {n: {**{c: float(summary.loc[n, c]) for c in SETTINGS},
                  "criterion": float(summary.loc[n, list(SETTINGS)].mean())} for n in models}
    by_lang = res.by_language()
    langs = {n: {str(lang): {k: float(v) for k, v in by_lang.loc[(n, lang)].items()}
                 for lang in by_lang.loc[n].index} for n in models}
    info = {"n_questions": len(pids), "languages": list(res.languages), "pool": "paragraphs",
            "backend": res.config["models"][0]["backend"]}
    return scores, langs, info


def print_scores(title: str, scores: dict) -> None:
    print(title)
    for n, s in scores.items():
        print(f"  {n:14s} mono {s['mono_map']:.4f} cross {s['cross_map']:.4f} multi {s['multi_map']:.4f} "
              f"criterion {s['criterion']:.4f}")
