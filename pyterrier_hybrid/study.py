"""The language-pair study: monolingual, cross-lingual and multilingual evaluation on LAReQA.

Each language's questions and candidates are encoded once (and cached); every setting is
scored with blocked matrix products and measured from the ranks of the relevant candidates
(:mod:`pyterrier_hybrid.measures`), never from materialised runs. Numbers equal ir_measures'
on the same rankings (pytrec_eval's tie rule included). The languages' questions and candidates are
loaded by :mod:`.study_data`, scored and measured by :mod:`.study_scoring`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import pandas as pd
import pyterrier_dr
from tqdm.auto import tqdm

from ._version import provenance
from .adapters import TransformerEncoder
from .cache import VectorCache
from .calibration import CALIBRATIONS, check_calibrations, get_calibration, language_means, means_needed
from .encoders import DenseEncoder
from .fs import ensure_writable_dir
from .lexical import BM25
from .measures import DEFAULT_MEASURES
from .report import write_outputs
from .results import SETTINGS, StudyResult, SystemName
from .study_data import POOLS, LanguageData, calibration_sources, load_languages, question_tag
from .study_scoring import lexical_frames, measure_language, score_block

__all__ = ["POOLS", "SETTINGS", "LanguageData", "StudyResult", "calibration_sources", "encode_languages", "evaluate",
           "lexical_frames", "load_languages", "one_language_settings", "question_tag", "score_block"]
_measure_language = measure_language  # its former private name (kept for callers)
QUERY_BLOCK = 512


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
    calibrations, with_means = _check_calibration(calibration, calibration_source)
    langs = load_languages(benchmark, languages, limit_queries=limit_queries, questions=questions, pool=pool)
    settings = one_language_settings(settings, tuple(langs))
    sources = calibration_sources(calibration_source, benchmark, langs) if with_means else None
    models_named, encoders = _named_encoders(models, names, out, backend=backend, batch_size=batch_size,
                                             text_mode=text_mode)
    systems = [SystemName(n, calibration=c).format() for n, e in zip(models_named, encoders, strict=True)
               for c in calibrations if c == "none" or not isinstance(e, BM25)]  # calibration is of vectors
    per_query = _per_query(models_named, encoders, benchmark, langs, settings, measures, calibrations,
                           calibration_source, sources, limit_queries=limit_queries, verbose=verbose)
    result = StudyResult(benchmark, tuple(langs), settings, per_query, systems, config={
        "benchmark": benchmark, "languages": list(langs), "settings": list(settings),
        "limit_queries": limit_queries, "questions": question_tag(questions) if questions is not None else None,
        "pool": pool, "text_mode": text_mode, "calibration": list(calibrations),
        "calibration_source": calibration_source or (benchmark if with_means else None),
        "models": [_model_record(n, e) for n, e in zip(models_named, encoders, strict=True)],
        **provenance(),
    })
    if out is not None:
        write_outputs(result, out)
    return result


def _check_calibration(calibration: str | Sequence[str], source: str | None) -> tuple[tuple[str, ...], list[str]]:
    """The calibrations asked for and those of them that need per-language means (``source`` gives
    means only to those)."""
    calibrations = check_calibrations(calibration)
    with_means = means_needed(calibrations)
    if source is not None and not with_means:
        needing = " / ".join(repr(c) for c in means_needed(CALIBRATIONS))
        raise ValueError(f"calibration_source {source!r} gives the means of {needing} calibration, "
                         f"but calibration is {', '.join(calibrations)}")
    return calibrations, with_means


def _per_query(models_named: list[str], encoders: list[Any], benchmark: str, langs: dict[str, LanguageData],
               settings: Sequence[str], measures: Sequence, calibrations: Sequence[str], calibration_source: str | None,
               sources: dict[str, LanguageData] | None, *, limit_queries: int | None, verbose: bool) -> pd.DataFrame:
    """The study's per-query frame: every system's frames (lexical or dense), ``system`` first."""
    frames = []
    for name, enc in zip(models_named, encoders, strict=True):
        if isinstance(enc, BM25):
            frames.extend(f.assign(system=name) for f in lexical_frames(enc, langs, settings, measures, verbose=verbose))
            continue
        frames += _score_model(name, enc, benchmark, langs, settings, measures, calibrations, calibration_source,
                               sources, limit_queries=limit_queries, verbose=verbose)
    per_query = pd.concat(frames, ignore_index=True)
    return per_query[["system", *[c for c in per_query.columns if c != "system"]]]


def _model_record(name: str, enc: Any) -> dict[str, Any]:
    """What the study's config records of one system's encoder."""
    return {"name": name, "spec": enc.model_name, "fingerprint": enc.fingerprint, "backend": enc.backend,
            "backend_requested": enc.backend_requested, "batch_size": enc.batch_size}


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
        for cal, f in measure_language(langs[lang], qvecs[lang], langs, dvecs, settings, measures, QUERY_BLOCK,
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
