"""A model directory as a PyTerrier artifact: its ``pt_meta.json``.

``pt.Artifact.load(model_dir)`` then opens it as a :class:`~pyterrier_hybrid.DenseEncoder`
(entry point ``pyterrier.artifact`` ``dense_encoder.sentence_transformers``), and PyTerrier's
artifact packaging (``build_package``, ``to_hf`` / ``from_hf``) works for trained models as for
indexes. Written into every model directory this package saves (trained, merged, packaged).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["ARTIFACT_META", "write_artifact_meta"]

ARTIFACT_META = {"type": "dense_encoder", "format": "sentence_transformers", "package_hint": "pyterrier-hybrid"}


def write_artifact_meta(model_dir: str | os.PathLike) -> None:
    """Make a saved model directory a PyTerrier artifact (its ``pt_meta.json``)."""
    Path(model_dir, "pt_meta.json").write_text(json.dumps(ARTIFACT_META) + "\n")
