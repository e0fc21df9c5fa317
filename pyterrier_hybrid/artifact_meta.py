"""A model directory as this package saves it: a PyTerrier artifact (its ``pt_meta.json``) with a
tokenizer that loads without a Python pass over ``tokenizer.json`` (:func:`save_model`).

``pt.Artifact.load(model_dir)`` then opens it as a :class:`~pyterrier_hybrid.DenseEncoder`
(entry point ``pyterrier.artifact`` ``dense_encoder.sentence_transformers``), and PyTerrier's
artifact packaging (``build_package``, ``to_hf`` / ``from_hf``) works for trained models as for
indexes. Written into every model directory this package saves (trained, merged, packaged).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .tokenizer_files import complete_tokenizer_config

__all__ = ["ARTIFACT_META", "save_model", "write_artifact_meta"]

ARTIFACT_META = {"type": "dense_encoder", "format": "sentence_transformers", "package_hint": "pyterrier-hybrid"}


def write_artifact_meta(model_dir: str | os.PathLike) -> None:
    """Make a saved model directory a PyTerrier artifact (its ``pt_meta.json``)."""
    Path(model_dir, "pt_meta.json").write_text(json.dumps(ARTIFACT_META) + "\n")


def save_model(model: Any, model_dir: str | os.PathLike, *, artifact: bool = True) -> Path:
    """Save a ``SentenceTransformer`` into ``model_dir`` (a directory being built: the caller writes it
    atomically) the one way every model of this package is saved: sentence-transformers' files, the
    tokenizer config completed (:func:`~pyterrier_hybrid.tokenizer_files.complete_tokenizer_config`)
    and, with ``artifact``, ``pt_meta.json``. Returns ``model_dir``."""
    model.save(str(model_dir))
    complete_tokenizer_config(model_dir)
    if artifact:
        write_artifact_meta(model_dir)
    return Path(model_dir)
