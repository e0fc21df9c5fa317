"""The WiSE-FT weight lambda of a trained run, chosen on that run's own held-out validation questions.

``(1 - lambda) * untuned + lambda * trained`` is evaluated for every lambda of a grid on the
questions the run held out for its validation loss (``train_config.json`` ``data.validation_pids``),
in the training benchmark and the run's training languages (never the test benchmark): by default against the pool of those questions'
paragraphs in all languages (``pool="paragraphs"``: every sentence of the paragraph is a same-topic
negative, so the pool is small and hard). The criterion is fixed: the mean of the mono, cross and
multilingual mAP; ties go to the smaller lambda (closer to the untuned model). A JSON record beside
the merged models (``merged/<run>-wise-choice.json``) holds the scores and the choice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fs import atomic_write_text
from ..study import evaluate, question_tag
from ..train_data import LAREQA_SOURCES
from ..training import CONFIG_NAME

__all__ = ["CRITERION", "LAMBDAS", "choose_lambda", "merged_dir", "validation_questions", "wise_model"]

LAMBDAS = (0.25, 0.5, 0.75, 1.0)
CRITERION = "mean of mono, cross and multilingual mAP on the run's validation questions"
_LAREQA = LAREQA_SOURCES


def merged_dir(out: str | os.PathLike, run_dir: str | os.PathLike, lam: float) -> Path:
    """Where a study keeps the WiSE-FT model of ``run_dir`` at ``lam``: ``out/merged/<run>-wise<lam>``."""
    return Path(out) / "merged" / f"{Path(run_dir).name}-wise{lam:g}"


def wise_model(base: Any, tuned: str | os.PathLike, lam: float, out: Path) -> Path:
    """``(1 - lam) * base + lam * tuned`` in ``out`` (reused when ``merge.json`` records the same
    sources, by fingerprint, and weights)."""
    from ..merging import MERGE_NAME, merge_models
    from ..models import load_model, model_fingerprint

    loaded = [load_model(base), load_model(tuned)]
    prints = [model_fingerprint(m) for m in loaded]
    record = out / MERGE_NAME
    if record.is_file():
        done = json.loads(record.read_text())
        if [s["fingerprint"] for s in done["sources"]] == prints and done["weights"] == [1 - lam, lam]:
            return out
    merge_models(loaded, [1 - lam, lam], out=out, overwrite=True, names=[str(base), str(tuned)])
    return out


def validation_questions(run_dir: str | os.PathLike) -> tuple[str, list[str], list[str]]:
    """The training benchmark of a finished run, its training languages and the parallel ids it held
    out for validation."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no training run ({CONFIG_NAME} is missing)")
    cfg = json.loads(path.read_text())
    source = cfg.get("options", {}).get("source", cfg.get("source"))
    if source not in _LAREQA:
        raise ValueError(f"{run_dir} was trained on {source!r}: choosing lambda on its validation questions needs a "
                         f"LAReQA training source ({', '.join(_LAREQA)})")
    pids = cfg.get("data", {}).get("validation_pids") or []
    if not pids:
        raise ValueError(f"{run_dir} held out no validation questions (eval_fraction 0): nothing to choose lambda on")
    return source, list(cfg.get("data", {}).get("languages") or []), list(pids)


def _check_grid(lambdas: Sequence[float]) -> list[float]:
    grid = [float(x) for x in lambdas]
    if not grid or any(not 0 < x <= 1 for x in grid) or len(set(grid)) != len(grid):
        raise ValueError(f"the lambda grid must be distinct numbers in (0, 1] (1 = the trained model), got {list(lambdas)}")
    return sorted(grid)


def choose_lambda(base: Any, run_dir: str | os.PathLike, *, lambdas: Sequence[float] = LAMBDAS,
                  out: str | os.PathLike, pool: str = "paragraphs", backend: str | None = None,
                  verbose: bool = True) -> dict[str, Any]:
    """Evaluate WiSE-FT of ``run_dir``'s model with ``base`` (its untuned model) at every lambda on
    the run's validation questions and return (and write to ``out/merged/<run>-wise-choice.json``)
    the record: per-lambda scores, ``chosen`` and its ``model`` directory. Merged models go to
    :func:`merged_dir` (the sweep's names, so its merges are reused)."""
    run_dir, out = Path(run_dir), Path(out)
    grid = _check_grid(lambdas)
    source, languages, pids = validation_questions(run_dir)
    models = [str(run_dir / "model") if lam == 1 else str(wise_model(base, run_dir / "model", lam,
                                                                      merged_dir(out, run_dir, lam)))
              for lam in grid]
    names = [f"lambda{lam:g}" for lam in grid]
    result = evaluate(models, benchmark=source, languages=languages or None, questions=pids, pool=pool, names=names,
                      backend=backend, verbose=verbose)
    summary = result.summary()
    maps = [c for c in ("mono_map", "cross_map", "multi_map") if c in summary]
    scores = {lam: {**{c: float(summary.loc[n, c]) for c in maps}, "criterion": float(summary.loc[n, maps].mean())}
              for lam, n in zip(grid, names, strict=True)}
    chosen = max(grid, key=lambda lam: (round(scores[lam]["criterion"], 12), -lam))
    record = {"run": str(run_dir), "base": str(base), "benchmark": source, "languages": list(result.languages),
              "questions": question_tag(pids), "n_questions": len(pids), "pool": pool, "criterion": CRITERION, "lambdas": grid,
              "scores": {f"{lam:g}": s for lam, s in scores.items()}, "chosen": chosen,
              "model": models[grid.index(chosen)],
              "backend": result.config["models"][0]["backend"], "cpu": result.config.get("cpu")}
    atomic_write_text(out / "merged" / f"{run_dir.name}-wise-choice.json", json.dumps(record, indent=2) + "\n")
    return record
