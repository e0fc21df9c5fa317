"""Encoders from elsewhere in the study: a pyterrier-dr bi-encoder (e.g. ``SBertBiEncoder``) or any
pair of PyTerrier transformers that add ``query_vec`` / ``doc_vec``, under a name.

The language-pair study scores inner products of the vectors these produce, as pyterrier-dr's
retrievers do. They are not cached: the study cannot know what another pipeline's vectors depend on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt

__all__ = ["TransformerEncoder"]


class TransformerEncoder:
    """``query_encoder`` maps a frame (``qid``, ``query``) to one with ``query_vec``; ``doc_encoder``
    a frame (``docno``, ``text``) to one with ``doc_vec``. ``name`` labels the system in results."""

    backend = backend_requested = "external"
    fingerprint = None
    batch_size = query_batch_size = None
    text_mode = "text"

    def __init__(self, query_encoder: pt.Transformer, doc_encoder: pt.Transformer, *, name: str):
        for what, t in (("query_encoder", query_encoder), ("doc_encoder", doc_encoder)):
            if not callable(getattr(t, "transform", None)):
                raise TypeError(f"{what} must be a PyTerrier transformer (with .transform), got {type(t).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError("a TransformerEncoder needs a non-empty name (it labels the system in the results)")
        self.query_encoder, self.doc_encoder, self.model_name = query_encoder, doc_encoder, name

    @classmethod
    def from_bi_encoder(cls, bi_encoder: Any, *, name: str | None = None) -> TransformerEncoder:
        """A pyterrier-dr ``BiEncoder`` (its ``query_encoder()`` and ``doc_encoder()``)."""
        label = name or getattr(bi_encoder, "model_name", None) or type(bi_encoder).__name__
        return cls(bi_encoder.query_encoder(), bi_encoder.doc_encoder(), name=str(label))

    def __repr__(self) -> str:
        return f"TransformerEncoder({self.query_encoder!r}, {self.doc_encoder!r}, name={self.model_name!r})"

    def doc_text(self, doc: Mapping[str, Any]) -> str:
        return doc["text"]

    def cached_vectors(self, collection: str, kind: str, ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (in the order of ``ids``), computed by the transformer of ``kind``."""
        if kind == "query":
            frame, id_col, vec_col, t = pd.DataFrame({"qid": list(ids), "query": list(texts)}), "qid", "query_vec", \
                self.query_encoder
        else:
            frame, id_col, vec_col, t = pd.DataFrame({"docno": list(ids), "text": list(texts)}), "docno", "doc_vec", \
                self.doc_encoder
        out = t.transform(frame)
        if vec_col not in out.columns:
            raise ValueError(f"{self.model_name}: the {kind} encoder returned no {vec_col!r} column "
                             f"(columns: {', '.join(map(str, out.columns))})")
        vecs = out.drop_duplicates(id_col).set_index(id_col).loc[list(ids), vec_col]
        return np.ascontiguousarray(np.stack(list(vecs)), dtype=np.float32)
