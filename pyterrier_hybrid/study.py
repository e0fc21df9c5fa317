"""The language-pair study: monolingual, cross-lingual and multilingual evaluation on LAReQA.

Each language's questions and candidates are encoded once (and cached); every setting is
scored with blocked matrix products and measured from the ranks of the relevant candidates
(:mod:`pyterrier_hybrid.measures`), never from materialised runs. Numbers equal ir_measures'
on the same rankings (pytrec_eval's tie rule included).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyterrier_dr
from tqdm.auto import tqdm

from datasets_ext import get_benchmark, load_lang, parallel_id

from ._version import provenance
from .adapters import TransformerEncoder
from .cache import VectorCache
from .calibration import (
    CALIBRATIONS,
    calibrate_scores,
    check_calibrations,
    get_calibration,
    language_means,
    means_needed,
)
from .encoders import DenseEncoder
from .fs import ensure_writable_dir
from .lexical import BM25
from .measures import DEFAULT_MEASURES, rank_metrics, relevant_ranks
from .report import write_outputs
from .results import SETTINGS, StudyResult, SystemName

__all__ = ["POOLS", "SETTINGS", "LanguageData", "StudyResult", "evaluate", "load_languages", "score_block"]
QUERY_BLOCK = 512


@dataclass
class LanguageData:
    """One language of a benchmark: its questions (``qids``) and candidates (``docnos``)."""

    lang: str
    qids: np.ndarray
    queries: list[str]
    docnos: np.ndarray
    docs: list[str]
    contexts: list[str]
    answer_col: dict[str, int]  # parallel id -> column of its relevant candidate
    query_subset: str = ""  # appended to the vector cache's collection name when a subset is kept
    doc_subset: str = ""

    @property
    def pids(self) -> list[str]:
        return [parallel_id(q) for q in self.qids]


def _check_languages(bench: Any, languages: Sequence[str] | None) -> tuple[str, ...]:
    if languages is None:
        return bench.languages
    languages = tuple(languages)
    if not languages:
        raise ValueError(f"the language list is empty; choose among {', '.join(bench.languages)}")
    unknown = [lang for lang in languages if lang not in bench.languages]
    if unknown:
        raise ValueError(f"{bench.name} has no language {', '.join(unknown)}; valid: {', '.join(bench.languages)}")
    if len(set(languages)) != len(languages):
        raise ValueError(f"duplicate languages in {list(languages)}")
    return languages


#: Candidate pools: every candidate of the language, or only the sentences of the kept questions' paragraphs.
POOLS = ("full", "paragraphs")


def _keep_questions(data: LanguageData, keep: set[str], pool: str, tag: str) -> LanguageData:
    """``data`` with only the questions whose parallel id is in ``keep`` (and, for pool
    ``paragraphs``, only the candidates of those questions' paragraphs in this language)."""
    rows = [i for i, p in enumerate(data.pids) if p in keep]
    answer = {p: c for p, c in data.answer_col.items() if p in keep}
    out = LanguageData(data.lang, data.qids[rows], [data.queries[i] for i in rows], data.docnos, data.docs,
                       data.contexts, answer, query_subset=f"?questions={tag}")
    if pool == "paragraphs":
        paragraphs = {data.contexts[c] for c in answer.values()}
        cols = [i for i, c in enumerate(data.contexts) if c in paragraphs]
        new = {old: i for i, old in enumerate(cols)}
        out = dataclasses.replace(out, docnos=data.docnos[cols], docs=[data.docs[i] for i in cols],
                                  contexts=[data.contexts[i] for i in cols],
                                  answer_col={p: new[c] for p, c in answer.items()}, doc_subset=f"?paragraphs={tag}")
    return out


def question_tag(questions: Collection[str]) -> str:
    """A short name of a question set (count and digest) for cache keys and records."""
    ids = sorted(set(questions))
    return f"{len(ids)}-{hashlib.sha256(chr(10).join(ids).encode()).hexdigest()[:12]}"


def load_languages(benchmark: str, languages: Sequence[str] | None = None, *,
                   limit_queries: int | None = None, questions: Collection[str] | None = None,
                   pool: str = "full") -> dict[str, LanguageData]:
    """Questions and candidates of each language; ``limit_queries`` keeps each language's first N.

    ``questions``: parallel ids (a question's id across languages) to keep, e.g. a training run's
    held-out validation questions; ``pool``: ``full`` (every candidate) or ``paragraphs`` (only the
    sentences of the kept questions' paragraphs, a small pool of hard same-topic negatives)."""
    bench = get_benchmark(benchmark)
    if limit_queries is not None and limit_queries < 1:
        raise ValueError(f"limit_queries must be a positive number of queries, got {limit_queries}")
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(POOLS)}")
    if pool != "full" and questions is None:
        raise ValueError(f"pool {pool!r} keeps the paragraphs of the given questions: pass questions=")
    if questions is not None and (isinstance(questions, str) or not questions):
        raise ValueError("questions must be a non-empty collection of parallel question ids")
    out = {}
    for lang in _check_languages(bench, languages):
        raw = load_lang(bench, lang)
        queries = raw.queries[:limit_queries] if limit_queries else raw.queries
        col = {d.doc_id: i for i, d in enumerate(raw.docs)}
        out[lang] = LanguageData(
            lang=lang,
            qids=np.array([q.query_id for q in queries]),
            queries=[q.text for q in queries],
            docnos=np.array([d.doc_id for d in raw.docs]),
            docs=[d.text for d in raw.docs],
            contexts=[d.context for d in raw.docs],
            answer_col={pid: col[did] for pid, did in raw.answer.items()},
        )
    if questions is not None:
        keep, tag = set(questions), question_tag(questions)
        known = set().union(*(d.pids for d in out.values()))
        if not keep & known:
            raise ValueError(f"none of the {len(keep)} questions is in {bench.name} "
                             f"({', '.join(out)}); give parallel ids such as {next(iter(sorted(known)))!r}")
        out = {lang: _keep_questions(d, keep, pool, tag) for lang, d in out.items()}
        empty = [lang for lang, d in out.items() if not len(d.qids)]
        if empty:
            raise ValueError(f"no kept question is in {', '.join(empty)}; evaluate the other languages "
                             f"(languages=) or keep more questions")
    return out


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


def _measure_language(q: LanguageData, qvecs: np.ndarray, langs: dict[str, LanguageData],
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


def calibration_sources(source: str | None, benchmark: str, langs: dict[str, LanguageData]
                        ) -> dict[str, LanguageData] | None:
    """The candidates whose per-language means ``center`` subtracts: ``None`` for the evaluated ones
    (transductive, label-free), else those of benchmark ``source`` in the evaluated languages (an
    error names the languages it lacks)."""
    if source is None or source == benchmark:
        return None
    other = load_languages(source, None)
    missing = [lang for lang in langs if lang not in other]
    if missing:
        raise ValueError(f"calibration source {source} has no candidates in {', '.join(missing)} (it has "
                         f"{', '.join(other)}); evaluate those languages only (languages=) or use the evaluated "
                         f"candidates (calibration_source=None)")
    return {lang: other[lang] for lang in langs}


def encode_languages(encoder: DenseEncoder, benchmark: str, langs: dict[str, LanguageData], *,
                     limit_queries: int | None = None, verbose: bool = True, label: str = "",
                     queries: bool = True) -> tuple[dict, dict]:
    """Query and candidate vectors per language, through the encoder's vector cache."""
    qvecs, dvecs = {}, {}
    suffix = f"?limit={limit_queries}" if limit_queries else ""
    desc = f"encoding {benchmark}" + (f" with {label}" if label else "")
    for lang, data in tqdm(langs.items(), desc=desc, disable=not verbose, unit="lang"):
        coll = f"{benchmark}/{lang}"
        if queries:
            qvecs[lang] = encoder.cached_vectors(coll + data.query_subset + suffix, "query", list(data.qids),
                                                 data.queries)
        texts = [encoder.doc_text({"text": t, "context": c}) for t, c in zip(data.docs, data.contexts, strict=True)]
        dvecs[lang] = encoder.cached_vectors(coll + data.doc_subset, "doc", list(data.docnos), texts)
    return qvecs, dvecs


def evaluate(
    models: Any | Sequence[Any] = None,
    *,
    benchmark: str = "xquad-r",
    languages: Sequence[str] | None = None,
    settings: Iterable[str] = SETTINGS,
    limit_queries: int | None = None,
    questions: Collection[str] | None = None,
    pool: str = "full",
    measures: Sequence = DEFAULT_MEASURES,
    names: Sequence[str] | None = None,
    backend: str | None = None,
    batch_size: int | None = None,
    text_mode: str = "text",
    calibration: str | Sequence[str] = "none",
    calibration_source: str | None = None,
    verbose: bool = True,
    out: str | os.PathLike | None = None,
) -> StudyResult:
    """Evaluate one or more models on a LAReQA benchmark in all language settings.

    ``models``: a spec, an encoder, or a list of them (``None`` = offline default); encoders may be
    ours (:class:`DenseEncoder`), pyterrier-dr bi-encoders (e.g. ``SBertBiEncoder``) or any pair of
    transformers as :class:`~pyterrier_hybrid.adapters.TransformerEncoder` (query, doc, name=). The first is
    the baseline of the significance tests. ``settings``: any of ``mono``, ``cross``,
    ``multi``. ``backend``: the encoding backend of models given as specs (default ``auto``: bf16
    where the CPU computes it natively, fp32 elsewhere; see :mod:`pyterrier_hybrid.backends`);
    ``batch_size``: their texts per encoding batch (default: the backend's measured best).
    ``calibration``: ``none``, ``center``, ``zscore`` or several (a list or ``"none,center"``); each
    one besides ``none`` adds a system ``<name>+<calibration>`` whose multilingual pool is
    calibrated (:mod:`pyterrier_hybrid.calibration`; its mono / cross rows are the model's own, which
    calibration leaves unchanged). ``calibration_source``: the benchmark whose candidates give the
    ``center`` means (default: the evaluated candidates, transductive). ``questions`` / ``pool``: evaluate
    only these parallel question ids, against every candidate (``full``) or only their paragraphs'
    sentences (``paragraphs``), e.g. a run's held-out validation questions (:func:`load_languages`).
    With ``out``, writes results.json,
    per_query.parquet, pairs.csv, report.md and figures there.
    """
    settings = _check_settings(settings)
    calibrations = check_calibrations(calibration)
    with_means = means_needed(calibrations)
    if calibration_source is not None and not with_means:
        needing = " / ".join(repr(c) for c in means_needed(CALIBRATIONS))
        raise ValueError(f"calibration_source {calibration_source!r} gives the means of {needing} calibration, "
                         f"but calibration is {', '.join(calibrations)}")
    langs = load_languages(benchmark, languages, limit_queries=limit_queries, questions=questions, pool=pool)
    settings = one_language_settings(settings, tuple(langs))
    sources = calibration_sources(calibration_source, benchmark, langs) if with_means else None
    models_named, encoders = _named_encoders(models, names, out, backend=backend, batch_size=batch_size,
                                             text_mode=text_mode)
    systems = [SystemName(n, calibration=c).format() for n, e in zip(models_named, encoders, strict=True)
               for c in calibrations if c == "none" or not isinstance(e, BM25)]  # calibration is of vectors
    frames = []
    for name, enc in zip(models_named, encoders, strict=True):
        if isinstance(enc, BM25):
            frames.extend(f.assign(system=name) for f in lexical_frames(enc, langs, settings, measures, verbose=verbose))
            continue
        frames += _score_model(name, enc, benchmark, langs, settings, measures, calibrations, calibration_source,
                               sources, limit_queries=limit_queries, verbose=verbose)
    per_query = pd.concat(frames, ignore_index=True)
    per_query = per_query[["system", *[c for c in per_query.columns if c != "system"]]]
    result = StudyResult(benchmark, tuple(langs), settings, per_query, systems, config={
        "benchmark": benchmark, "languages": list(langs), "settings": list(settings),
        "limit_queries": limit_queries, "questions": question_tag(questions) if questions is not None else None,
        "pool": pool, "text_mode": text_mode, "calibration": list(calibrations),
        "calibration_source": calibration_source or (benchmark if with_means else None),
        "models": [{"name": n, "spec": e.model_name, "fingerprint": e.fingerprint, "backend": e.backend,
                    "backend_requested": e.backend_requested, "batch_size": e.batch_size}
                   for n, e in zip(models_named, encoders, strict=True)],
        **provenance(),
    })
    if out is not None:
        write_outputs(result, out)
    return result


def _named_encoders(models: Any, names: Sequence[str] | None, out: str | os.PathLike | None, **options: Any
                    ) -> tuple[list[str], list[Any]]:
    """The study's encoders (models given as specs loaded with ``options``) and their system names;
    the output directory and the default vector cache are checked writable first (fail in a second,
    not after the encoding)."""
    if models is None or isinstance(models, (str, os.PathLike, *_ENCODERS)) or hasattr(models, "encode_query"):
        models = [models]
    if out is not None:
        ensure_writable_dir(out)
    if any(not isinstance(m, _ENCODERS) for m in models):
        VectorCache().check_usable()  # a read-only cache with entries is used; a missing entry fails before encoding
    encoders = [_as_encoder(m, **options) for m in models]
    models_named = list(names) if names else _system_names(encoders)
    if len(models_named) != len(encoders):
        raise ValueError(f"{len(models_named)} names for {len(encoders)} models")
    return models_named, encoders


def _check_settings(settings: Iterable[str]) -> tuple[str, ...]:
    settings = tuple(settings)
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise ValueError(f"unknown settings {bad or settings}; valid: {', '.join(SETTINGS)}")
    if len(set(settings)) != len(settings):
        raise ValueError(f"settings {list(settings)} repeat one; give each of {', '.join(SETTINGS)} at most once")
    return settings


def _score_model(name: str, enc: Any, benchmark: str, langs: dict[str, LanguageData], settings: Sequence[str],
                 measures: Sequence, calibrations: Sequence[str], calibration_source: str | None,
                 sources: dict[str, LanguageData] | None, *, limit_queries: int | None,
                 verbose: bool) -> list[pd.DataFrame]:
    """One model's per-query frames in every setting (system column set; mono / cross rows repeated
    for each calibration that leaves them unchanged, their own for one that does not (``lsar``); the
    multilingual pool once per calibration)."""
    qvecs, dvecs = encode_languages(enc, benchmark, langs, limit_queries=limit_queries, verbose=verbose, label=name)
    means = None
    with_means = means_needed(calibrations)
    if with_means and ("multi" in settings or any(get_calibration(c).within_language for c in with_means)):
        means = language_means(dvecs if sources is None else encode_languages(
            enc, calibration_source, sources, verbose=verbose, label=name, queries=False)[1])
    frames = []
    for lang in tqdm(langs, desc=f"scoring {name}", disable=not verbose, unit="lang"):
        for cal, f in _measure_language(langs[lang], qvecs[lang], langs, dvecs, settings, measures, QUERY_BLOCK,
                                        calibrations, means):
            targets = [cal] if (f["setting"].iat[0] == "multi" or cal != "none") else \
                [c for c in calibrations if not get_calibration(c).within_language]
            frames.extend(f.assign(system=SystemName(name, calibration=c).format()) for c in targets)
    return frames


def one_language_settings(settings: tuple[str, ...], languages: tuple[str, ...]) -> tuple[str, ...]:
    """The settings that apply to ``languages``: with one language only ``mono`` (its multilingual
    pool is its monolingual corpus, there is no other language to cross to and no rank distance),
    said once in a warning; an error if ``mono`` was not asked for."""
    if len(languages) > 1 or settings == ("mono",):
        return settings
    if "mono" not in settings:
        raise ValueError(f"settings {', '.join(settings)} need two or more languages, but only "
                         f"{languages[0]} is evaluated: add a language or evaluate the mono setting")
    warnings.warn(f"one language ({languages[0]}): only the monolingual setting applies; cross-lingual, "
                  "multilingual and rank distance need two or more languages", UserWarning, stacklevel=3)
    return ("mono",)


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


#: Models given as encoders (ours are pyterrier-dr bi-encoders too); anything else is a spec to load.
_ENCODERS = (TransformerEncoder, pyterrier_dr.BiEncoder, BM25)


def _as_encoder(model: Any, **options: Any) -> DenseEncoder | TransformerEncoder:
    """A study encoder: ours as given, a pyterrier-dr bi-encoder adapted, anything else loaded."""
    if isinstance(model, (DenseEncoder, TransformerEncoder, BM25)):
        return model
    if isinstance(model, str) and model.lower() in ("bm25", "bm25[pisa]"):  # the lexical baseline by name
        return BM25(analyser="pisa" if model.lower() == "bm25[pisa]" else "unicode")
    if isinstance(model, pyterrier_dr.BiEncoder):
        return TransformerEncoder.from_bi_encoder(model)
    return DenseEncoder(model, verbose=False, **options)


def _system_names(encoders: Sequence[DenseEncoder]) -> list[str]:
    names = [os.path.basename(e.model_name.rstrip("/")) or e.model_name for e in encoders]
    if len(set(names)) == len(names):
        return names
    return [f"{i}:{n}" for i, n in enumerate(names)]
