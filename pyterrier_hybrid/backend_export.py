"""What the exported runtimes (ONNX Runtime, OpenVINO) share: the backend error, the transformers
network of a sentence-transformers model and its inputs, example inputs for tracing, and the cache
folder of exported models (``$PYTERRIER_HYBRID_HOME/backends/<fingerprint>-<recipe>/``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fs import home_dir

__all__ = ["EXAMPLE_TEXTS", "BackendError", "cache_folder", "input_names", "tokenized", "transformer_of"]

#: What the network is traced on when exported (two lengths, so padding is part of the trace).
EXAMPLE_TEXTS = ["query: a short text", "query: a somewhat longer text to pad the batch"]


class BackendError(ValueError):
    """An unknown backend, a missing package, or a model the backend cannot run."""


def transformer_of(model: Any) -> Any:
    """The sentence-transformers ``Transformer`` (first module) of ``model``, whose network a backend replaces."""
    first = model[0]
    if not hasattr(first, "auto_model"):
        raise BackendError(f"backends other than 'torch' need a model whose first module is a sentence-transformers "
                           f"Transformer, got {type(first).__name__}")
    return first


def tokenized(model: Any, texts: list[str]) -> dict[str, Any]:
    """The network inputs of ``texts`` as ``model`` tokenizes them."""
    return model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)


def input_names(model: Any) -> list[str]:
    """The network inputs the model's tokenizer produces (e.g. input_ids, attention_mask[, token_type_ids])."""
    feats = tokenized(model, ["a b"])
    return [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats]


def cache_folder(cache_dir: str | os.PathLike | None, fingerprint: str, recipe: str) -> Path:
    """Where an exported model of ``fingerprint`` is cached: ``<cache_dir or home/backends>/<fp>-<recipe>``."""
    root = Path(cache_dir) if cache_dir is not None else home_dir() / "backends"
    return root / f"{fingerprint[:32]}-{recipe}"

