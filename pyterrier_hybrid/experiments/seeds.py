"""Statistics of a study trained with several seeds: the seed as the unit between strategies, the
question as the unit within a model.

System names carry the seed as ``<configuration>/s<seed>`` (e.g. ``hybrid-a0.50/s1``,
``x-y+wise0.5/s2+center``); the configuration is the name without it. A strategy difference
is tested over seeds (paired by seed: each seed shares the data split, the batch-plan seed and
the initialisation of the strategies it trained); a question-level test averages each question's
rows (its language pairs) and its seeds first, so each of the benchmark's questions counts once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..figures import save_png, subplots
from ..fs import atomic_write, atomic_write_text
from ..report import clean_json
from ..results import StudyResult, SystemName
from ..significance import question_of
from ..train_config import DEFAULT_ALPHA, parse_run_name

__all__ = ["configuration", "per_question", "question_tests", "seed_of", "seed_summary", "seed_tests",
           "write_seed_report"]

#: The study-level numbers of a system (StudyResult.summary columns) compared across seeds.
SUMMARY = ("mono_map", "cross_map", "multi_map", "rank_distance")


def configuration(system: str) -> str:
    """``x-y+wise0.5/s2+center`` -> ``x-y+wise0.5+center`` (:attr:`SystemName.configuration`)."""
    return SystemName.parse(system).configuration


def seed_of(system: str) -> int | None:
    """The seed of a system name (``None`` for the untuned model or a single-seed study)."""
    return SystemName.parse(system).seed


def _ci(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean (NaN for fewer than 2 values)."""
    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))


def _by_seed(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary.reset_index()
    s["configuration"] = s["system"].map(configuration)
    s["seed"] = s["system"].map(seed_of)
    return s


def seed_summary(summary: pd.DataFrame, columns: Sequence[str] = SUMMARY) -> pd.DataFrame:
    """Per configuration and measure of ``summary`` (a StudyResult's ``summary()``): mean over seeds,
    95 % CI half-width (t), the per-seed values."""
    s = _by_seed(summary)
    rows = []
    for conf, g in s.groupby("configuration", sort=False):
        g = g.sort_values("seed", na_position="first")
        for col in columns:
            if col not in g:
                continue
            v = g[col].to_numpy(dtype=float)
            rows.append({"configuration": conf, "measure": col, "n_seeds": len(v), "mean": v.mean(), "ci95": _ci(v),
                         "per_seed": [round(float(x), 6) for x in v],
                         "seeds": [None if pd.isna(x) else int(x) for x in g["seed"]]})
    return pd.DataFrame(rows)


def seed_tests(summary: pd.DataFrame, pairs: Sequence[tuple[str, str]], columns: Sequence[str] = SUMMARY
               ) -> pd.DataFrame:
    """``a`` minus ``b`` for each configuration pair of ``summary`` (a StudyResult's ``summary()``),
    paired by seed: mean difference, its 95 % CI,
    the paired t-test p-value (df = seeds - 1), and how many seeds favour ``a``."""
    s = _by_seed(summary).set_index(["configuration", "seed"])
    rows = []
    for a, b in pairs:
        sa, sb = s.loc[a], s.loc[b]
        shared = sorted(set(sa.index) & set(sb.index))
        if not shared:
            raise ValueError(f"{a} and {b} share no seed")
        for col in columns:
            if col not in s:
                continue
            x, y = sa.loc[shared, col].to_numpy(float), sb.loc[shared, col].to_numpy(float)
            d = x - y
            p = float(stats.ttest_rel(x, y)[1]) if len(d) > 1 and np.ptp(d) > 0 else float("nan")
            better = d < 0 if col == "rank_distance" else d > 0
            rows.append({"a": a, "b": b, "measure": col, "n_seeds": len(d), "mean_a": x.mean(), "mean_b": y.mean(),
                         "difference": d.mean(), "ci95": _ci(d), "p_value": p, "seeds_a_better": int(better.sum())})
    return pd.DataFrame(rows)


def per_question(result: StudyResult, measures: Sequence[str] = ("AP", "R@1", "R@10", "RankDistance")
                 ) -> pd.DataFrame:
    """Compact per-question results: per system, setting and question, the mean over its rows
    (mono: its query languages; cross: its ordered pairs; multi: its query languages)."""
    pq = result.per_query
    cols = [m for m in measures if m in pq.columns]
    out = (pq.assign(question=question_of(pq["qid"]).to_numpy())
             .groupby(["system", "setting", "question"], sort=False)[cols].mean().reset_index())
    return out


def question_tests(questions: pd.DataFrame, pairs: Sequence[tuple[str, str]], measure: str = "AP") -> pd.DataFrame:
    """``a`` vs ``b`` (configurations) per setting with the question as the unit: each question's
    value averaged over its rows (see :func:`per_question`) and over the shared seeds, then a paired
    t-test over questions."""
    q = questions.assign(configuration=questions["system"].map(configuration),
                         seed=questions["system"].map(seed_of))
    rows = []
    for a, b in pairs:
        qa, qb = q[q.configuration == a], q[q.configuration == b]
        shared = set(qa.seed.dropna()) & set(qb.seed.dropna())
        if shared:
            qa, qb = qa[qa.seed.isin(shared)], qb[qb.seed.isin(shared)]
        for setting in q.setting.unique():
            va = qa[qa.setting == setting].groupby("question")[measure].mean()
            vb = qb[qb.setting == setting].groupby("question")[measure].mean()
            joined = pd.DataFrame({"a": va, "b": vb}).dropna()
            if len(joined) < 2:
                continue
            d = joined["a"] - joined["b"]
            rows.append({"a": a, "b": b, "setting": setting, "measure": measure, "n_questions": len(joined),
                         "n_seeds": len(shared) or 1, "mean_a": joined["a"].mean(), "mean_b": joined["b"].mean(),
                         "difference": d.mean(), "ci95": _ci(d.to_numpy()),
                         "p_value": float(stats.ttest_rel(joined["a"], joined["b"])[1]) if d.any() else float("nan"),
                         "+": int((d > 0).sum()), "-": int((d < 0).sum())})
    return pd.DataFrame(rows)


def _variants(configs: Sequence[str], strategies: Sequence[str]) -> list[str]:
    """The suffixes applied to the strategies (``""``, ``+center``, ``+wise0.5``, ...), in order seen."""
    out: list[str] = []
    for c in configs:
        for s in strategies:
            if c.startswith(s) and c[len(s):] not in out:
                out.append(c[len(s):])
    return out


def _plan_tests(configs: Sequence[str], strategies: Sequence[str]) -> tuple[list, list]:
    """Between strategies (the hybrid closest to 0.5 vs each other strategy, per variant) and within
    a model (each variant vs the plain model, the untuned one included; each trained model vs the
    untuned one)."""
    runs = {s: parse_run_name(s) for s in strategies}
    hybrids = {s: r[1] for s, r in runs.items() if r is not None and r[0].alpha is None}
    hybrid = min(hybrids, key=lambda s: abs(hybrids[s] - DEFAULT_ALPHA)) if hybrids else None
    have = set(configs)
    between = [(hybrid + v, s + v) for v in _variants(configs, strategies) for s in strategies
               if hybrid and s != hybrid and hybrid + v in have and s + v in have]
    variants = [v for v in _variants(configs, strategies) if v]
    within = [(s, "base") for s in strategies if "base" in have] + [
        (s + v, s) for s in ["base", *strategies] for v in variants if s + v in have and s in have]
    return between, within


def _fmt(mean: float, ci: float, digits: int = 3) -> str:
    if np.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def _summary_markdown(summ: pd.DataFrame) -> str:
    wide = {}
    for (conf, measure), g in summ.groupby(["configuration", "measure"], sort=False):
        r = g.iloc[0]
        wide.setdefault(conf, {"seeds": r.n_seeds})[measure] = _fmt(r["mean"], r["ci95"], 1 if measure ==
                                                                       "rank_distance" else 3)
    t = pd.DataFrame.from_dict(wide, orient="index").rename(columns={"mono_map": "Mo.", "cross_map": "Cr.",
                                                                    "multi_map": "Mul.", "rank_distance": "RankDist"})
    return t.to_markdown(disable_numparse=True)


def _tests_markdown(tests: pd.DataFrame, unit: str) -> str:
    if tests.empty:
        return "(none)"
    cols = ["a", "b", "setting" if "setting" in tests else "measure", "difference", "ci95", "p_value"]
    cols += ["seeds_a_better"] if "seeds_a_better" in tests else ["+", "-"]
    return tests[cols].to_markdown(index=False, floatfmt=".4g") + f"\n\nUnit: {unit}."


def seeds_figure(summ: pd.DataFrame, path: Path) -> Path:
    """Mo. / Cr. / Mul. mAP and rank distance per configuration: the per-seed values as dots, the
    mean with its 95 % CI as a bar."""
    panels = [("mono_map", "Mo. mAP"), ("cross_map", "Cr. mAP"), ("multi_map", "Mul. mAP"),
              ("rank_distance", "rank distance")]
    confs = list(dict.fromkeys(summ["configuration"]))
    fig, axes = subplots(1, len(panels), figsize=(3.2 * len(panels), 0.32 * len(confs) + 1.4), sharey=True)
    for ax, (measure, title) in zip(axes, panels, strict=True):
        sub = summ[summ.measure == measure].set_index("configuration").reindex(confs)
        y = np.arange(len(confs))
        ax.errorbar(sub["mean"], y, xerr=sub["ci95"].fillna(0), fmt="o", color="black", ms=3, capsize=2)
        for yi, vals in zip(y, sub["per_seed"], strict=True):
            if isinstance(vals, list):
                ax.scatter(vals, [yi] * len(vals), s=9, alpha=0.5, color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(np.arange(len(confs)), confs)
    axes[0].invert_yaxis()
    return save_png(fig, path)


def write_seed_report(result: StudyResult, records: dict[str, dict[str, Any]], out: Path, *, options: dict,
                      eval_seconds: float) -> None:
    """``sweep.json``, ``sweep.md``, ``per_question.parquet`` (compact, per system / setting /
    question), ``seed_summary.csv``, ``tests.csv`` and ``seeds.png`` in ``out`` (atomically)."""
    strategies = list(dict.fromkeys(configuration(n) for n in records))
    configs = list(dict.fromkeys(configuration(s) for s in result.systems))
    between, within = _plan_tests(configs, strategies)
    summary = result.summary()  # one pass over the per-query rows, shared below
    summ = seed_summary(summary)
    seed_t = seed_tests(summary, between)
    questions = per_question(result)
    q_between = question_tests(questions, between)
    q_within = question_tests(questions, within)
    by_lang = result.by_language().reset_index()
    by_lang["configuration"] = by_lang["system"].map(configuration)
    by_lang_mean = by_lang.groupby(["configuration", "query_lang"], sort=False)[
        [c for c in ("mono", "cross", "multi") if c in by_lang]].mean().reset_index()
    tests = pd.concat([seed_t.assign(unit="seed"), q_between.assign(unit="question"),
                       q_within.assign(unit="question")], ignore_index=True)
    doc = {"schema": "pyterrier-hybrid/seeded-sweep/v1", "options": options, "runs": records,
           "seed_summary": summ.to_dict("records"), "tests": tests.to_dict("records"),
           "summary": summary.reset_index().to_dict("records"),
           "by_language": by_lang_mean.to_dict("records"), "eval_seconds": eval_seconds,
           "evaluation": {k: v for k, v in result.config.items() if k != "models"},
           "models": result.config.get("models")}
    atomic_write_text(out / "sweep.json", json.dumps(clean_json(doc), indent=1, default=str))
    atomic_write(out / "per_question.parquet", lambda p: questions.to_parquet(p, index=False))
    atomic_write(out / "seed_summary.csv", lambda p: summ.to_csv(p, index=False))
    atomic_write(out / "tests.csv", lambda p: tests.to_csv(p, index=False))
    seeds_figure(summ, out / "seeds.png")
    train = pd.DataFrame([{"run": n, "seed": r.get("seed"), "steps": r["steps"],
                           "mono / cross batches": (f"{r['batches']['mono']} / {r['batches']['cross']}"
                                                    if r.get("batches") else ""),
                           "train s": r["train_seconds"], "final loss": r["final_loss"],
                           "last val loss": list(r["eval_losses"].values())[-1] if r["eval_losses"] else None}
                          for n, r in records.items()])
    lines = [f"# Seeded study: {options['train_source']} -> {result.benchmark} (zero-shot)", "",
             f"Model {options['model']}; {options['steps']} steps x batch {options['batch_size']}, lr {options['lr']}, "
             f"precision {options['precision']}, batch mix {options['batch_mix']}, keep {options['keep']}, "
             f"frozen embeddings {options['freeze_embeddings']}; seeds {options['seeds']}; WiSE-FT lambda "
             f"{options['wise'] or 'none'}; calibration {', '.join(options['calibration'])} (means from "
             f"{options['calibration_source'] or 'n/a'}).", "",
             "## mAP and rank distance: mean ± 95 % CI over seeds", "", _summary_markdown(summ), "",
             "![per-seed values, mean and 95 % CI](seeds.png)", "",
             "## Strategies compared with the seed as the unit (paired by seed)", "",
             _tests_markdown(seed_t, "the seed (paired t-test, df = seeds - 1)"), "",
             "## Strategies compared with the question as the unit (pairs and seeds averaged per question)", "",
             _tests_markdown(q_between, "the question"), "",
             "## Within a strategy: calibration, interpolation, training (question as the unit)", "",
             _tests_markdown(q_within, "the question"), "",
             "## Per query language (mean over seeds; paper Tables 3-6 layout)", ""]
    for conf, g in by_lang_mean.groupby("configuration", sort=False):
        lines += [f"### {conf}", "", g.drop(columns="configuration").set_index("query_lang")
                  .to_markdown(floatfmt=".3f"), ""]
    lines += ["## Training runs", "", train.to_markdown(index=False, floatfmt=".4g"), "",
              f"Evaluation of {len(result.systems)} systems: {eval_seconds:.0f} s.", ""]
    atomic_write_text(out / "sweep.md", "\n".join(lines))
