"""Scoring and measuring one language's questions in every setting of the study: dense systems by
blocked matrix products (the ranks of the relevant candidates, never materialised runs), lexical
systems from their truncated PISA runs; one per-query frame per (setting, query language,
candidate language)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .calibration import calibrate_scores, get_calibration
from .lexical import BM25
from .measures import rank_metrics, relevant_ranks
from .study_data import LanguageData

__all__ = ["lexical_frames", "measure_language", "score_block"]


def score_block(qvecs: np.ndarray, dvecs: np.ndarray) -> np.ndarray:
    """Inner products ``[n_queries, n_docs]``, in float64 rounded to float32.

    The same arithmetic as :class:`~pyterrier_hybrid.DenseRetriever`, so a score does not depend
    on batching and the study ranks exactly what the PyTerrier pipeline retrieves.
    """
    return (np.asarray(qvecs, dtype=np.float64) @ np.asarray(dvecs, dtype=np.float64).T).astype(np.float32)


def _frame(metrics: dict[str, np.ndarray], qids: np.ndarray, setting: str, q: str, d: str) -> pd.DataFrame:
    df = pd.DataFrame(metrics)
    df.insert(0, "qid", qids)
    df.insert(0, "doc_lang", d)
    df.insert(0, "query_lang", q)
    df.insert(0, "setting", setting)
    return df


def _pair_metrics(scores: np.ndarray, qids: np.ndarray, pids: list[str], target: LanguageData,
                  measures: Sequence) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    rows = [i for i, p in enumerate(pids) if p in target.answer_col]
    if not rows:
        return None
    cols = [np.array([target.answer_col[pids[i]]]) for i in rows]
    ranks = relevant_ranks(scores[rows], target.docnos, cols)
    return rank_metrics(ranks, np.ones(len(rows), dtype=np.int64), measures), qids[rows]


def measure_language(q: LanguageData, qvecs: np.ndarray, langs: dict[str, LanguageData],
                      dvecs: dict[str, np.ndarray], settings: Sequence[str], measures: Sequence,
                      block: int, calibrations: Sequence[str] = ("none",),
                      means: dict[str, np.ndarray] | None = None) -> list[tuple[str, pd.DataFrame]]:
    """``(calibration, frame)`` pairs: mono / cross frames once as ``"none"`` (for the calibrations that
    leave rankings within a language unchanged) and once per calibration that changes them
    (``within_language``, e.g. ``lsar``), the multilingual pool once per calibration."""
    frames: list[tuple[str, pd.DataFrame]] = []
    own_pairs = [c for c in calibrations if get_calibration(c).within_language]
    pool_docnos = np.concatenate([d.docnos for d in langs.values()])
    offsets = np.cumsum([0] + [len(d.docnos) for d in langs.values()])[:-1]
    pids_all = q.pids
    for start in range(0, len(q.qids), block):
        sl = slice(start, start + block)
        qv, qids, pids = qvecs[sl], q.qids[sl], pids_all[sl]
        per_lang = {}
        for d, target in langs.items():
            setting = "mono" if d == q.lang else "cross"
            if setting in settings or "multi" in settings:
                per_lang[d] = score_block(qv, dvecs[d])
            if setting in settings:
                for cal in ("none", *own_pairs):
                    scores = per_lang[d] if cal == "none" else _calibrated(per_lang[d], cal, qv, dvecs[d], d, means)
                    res = _pair_metrics(scores, qids, pids, target, measures)
                    if res is not None:
                        frames.append((cal, _frame(res[0], res[1], setting, q.lang, d)))
        if "multi" in settings:
            cols = [
                np.array([off + t.answer_col[p] for off, t in zip(offsets, langs.values(), strict=True)
                          if p in t.answer_col])
                for p in pids
            ]
            n_rel = np.array([len(c) for c in cols])
            for cal in calibrations:
                blocks = [per_lang[d] if cal == "none" else _calibrated(per_lang[d], cal, qv, dvecs[d], d, means)
                          for d in langs]
                ranks = relevant_ranks(np.concatenate(blocks, axis=1), pool_docnos, cols)
                frames.append((cal, _frame(rank_metrics(ranks, n_rel, [*measures, "RankDistance"],
                                                        depth=len(pool_docnos)), qids, "multi",
                                           q.lang, "multi")))
    return frames


def _calibrated(scores: np.ndarray, cal: str, queries: np.ndarray, docs: np.ndarray, lang: str,
                means: dict[str, np.ndarray] | None) -> np.ndarray:
    return calibrate_scores(scores, cal, queries=queries, mean=means[lang] if means else None, docs=docs, means=means)


def _relevant_ranks_in_run(run: pd.DataFrame, qids: np.ndarray, relevant: list[list[str]]
                           ) -> tuple[list[np.ndarray], np.ndarray]:
    """1-based ranks of each query's relevant docnos in a (truncated) run, in pytrec_eval's order
    (score descending, then docno descending), and each query's depth (docs retrieved)."""
    by_query = {q: g for q, g in run.groupby("qid", sort=False)}
    ranks, depth = [], np.zeros(len(qids), dtype=np.int64)
    for i, (qid, rel) in enumerate(zip(qids, relevant, strict=True)):
        g = by_query.get(qid)
        if g is None:
            ranks.append(np.empty(0, dtype=np.int64))
            continue
        order = sorted(zip(g["score"].to_numpy(dtype=np.float64), g["docno"], strict=True), reverse=True)
        position = {d: r for r, (_, d) in enumerate(order, start=1)}
        depth[i] = len(order)
        ranks.append(np.array(sorted(position[d] for d in rel if d in position), dtype=np.int64))
    return ranks, depth


def lexical_frames(system: BM25, langs: dict[str, LanguageData], settings: Sequence[str], measures: Sequence, *,
                   verbose: bool = False) -> list[pd.DataFrame]:
    """Per-query frames of a lexical system: one PISA index per candidate language (mono, cross)
    and one of the pool (multi), each query's top ``num_results``; measures of that truncated
    run as pytrec_eval computes them (a relevant candidate not retrieved adds nothing to AP and
    recall, and counts at depth + 1 for RankDistance)."""
    frames = []
    with tempfile.TemporaryDirectory(prefix="pyterrier-hybrid-bm25-") as tmp:
        indexes: dict[str, Any] = {}

        def index(key: str, targets: Sequence[LanguageData]):
            if key not in indexes:
                docs = ((docno, text, t.lang) for t in targets for docno, text in zip(t.docnos, t.docs, strict=True))
                indexes[key] = system.build_index(docs, os.path.join(tmp, key))
            return indexes[key]

        for q in tqdm(langs.values(), desc=f"scoring {system.model_name}", disable=not verbose, unit="lang"):
            pids = q.pids
            pairs = [(d, t, "mono" if d == q.lang else "cross") for d, t in langs.items()]
            for d, target, setting in pairs:
                if setting not in settings:
                    continue
                rows = [i for i, p in enumerate(pids) if p in target.answer_col]
                if not rows:
                    continue
                qids = q.qids[rows]
                run = system.search(index(d, [target]), list(qids), [q.queries[i] for i in rows], q.lang)
                relevant = [[target.docnos[target.answer_col[pids[i]]]] for i in rows]
                ranks, depth = _relevant_ranks_in_run(run, qids, relevant)
                frames.append(_frame(rank_metrics(ranks, np.ones(len(rows), dtype=np.int64), measures, depth=depth),
                                     qids, setting, q.lang, d))
            if "multi" in settings:
                relevant = [[t.docnos[t.answer_col[p]] for t in langs.values() if p in t.answer_col] for p in pids]
                run = system.search(index("pool", list(langs.values())), list(q.qids), q.queries, q.lang)
                ranks, depth = _relevant_ranks_in_run(run, q.qids, relevant)
                n_rel = np.array([len(r) for r in relevant])
                frames.append(_frame(rank_metrics(ranks, n_rel, [*measures, "RankDistance"], depth=depth),
                                     q.qids, "multi", q.lang, "multi"))
    return frames

