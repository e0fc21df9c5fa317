"""Weight-space interpolation of models of one architecture (WiSE-FT, model soups).

``merge_models([base, tuned], [1 - lam, lam], out=...)`` is WiSE-FT (Wortsman et al., CVPR 2022):
the fine-tuned model interpolated back towards the model it started from. Uniform weights over
several fine-tuned models of one base (e.g. X-X-mono and X-Y) are a "model soup". Every floating
parameter and buffer is ``sum_i w_i * p_i`` (computed in float64, stored in the first model's
dtype); integer buffers must be equal. The merged model is written atomically with
``merge.json`` (sources, their fingerprints, weights, versions).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import provenance
from .artifact_meta import save_model
from .fs import atomic_dir, ensure_writable_dir

__all__ = ["MERGE_NAME", "merge_models"]

MERGE_NAME = "merge.json"


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} models; give one weight per model")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must be non-negative and sum to 1 (an interpolation), got {weights}")
    return weights


def _check_out(out: Path, models: Sequence[Any], overwrite: bool) -> None:
    """``out`` is new, empty, or (``overwrite``) a model an earlier merge wrote; never an input."""
    for m in models:
        if isinstance(m, (str, os.PathLike)) and Path(m).expanduser().exists():
            src, dst = Path(m).expanduser().resolve(), out.resolve()
            if src == dst or src in dst.parents or dst in src.parents:
                raise ValueError(f"{out} is one of the models to merge (or holds one): choose another output")
    ensure_writable_dir(out.parent, what="parent of the output directory")
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output {out} is a file, not a directory")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; choose another output or pass overwrite=True")
        if not ((out / MERGE_NAME).is_file() and (out / "modules.json").is_file()):
            raise ValueError(f"{out} is not a model that merge wrote (no {MERGE_NAME}): it is never replaced; "
                             f"choose another output")


def merge_models(models: Sequence[Any], weights: Sequence[float] | None = None, *, out: str | os.PathLike,
                 overwrite: bool = False, names: Sequence[str] | None = None) -> Path:
    """Write the weighted average of ``models`` (specs, paths or loaded SentenceTransformers of one
    architecture; default weights uniform) as a sentence-transformers model directory ``out``.
    The first model gives the tokenizer, prompts and configuration. ``names``: how ``merge.json``
    names the sources (default: the specs given). ``overwrite`` replaces only an earlier merge (a
    directory with ``merge.json``), never an input model or any other directory. Returns ``out``."""
    import torch

    from .models import load_model, model_fingerprint

    if len(models) < 2:
        raise ValueError(f"merging needs at least two models, got {len(models)}")
    weights = _check_weights(weights, len(models))
    out = Path(out)
    _check_out(out, models, overwrite)  # before any model is loaded
    loaded = [load_model(m) if isinstance(m, (str, os.PathLike)) else m for m in models]
    states = [m.state_dict() for m in loaded]
    keys = list(states[0])
    for i, st in enumerate(states[1:], 1):
        if list(st) != keys:
            extra, missing = sorted(set(st) - set(keys))[:3], sorted(set(keys) - set(st))[:3]
            raise ValueError(f"model {i} has other parameters than model 0 (extra {extra}, missing {missing}): "
                             f"merging needs one architecture")
        bad = [k for k in keys if st[k].shape != states[0][k].shape]
        if bad:
            raise ValueError(f"model {i} differs in shape from model 0 at {bad[0]} ({tuple(st[bad[0]].shape)} vs "
                             f"{tuple(states[0][bad[0]].shape)}): merging needs one architecture")
    merged = {}
    for k in keys:
        ref = states[0][k]
        if ref.is_floating_point():
            acc = sum(w * st[k].to(torch.float64) for w, st in zip(weights, states, strict=True))
            merged[k] = acc.to(ref.dtype)
        else:
            if any(not torch.equal(st[k], ref) for st in states[1:]):
                raise ValueError(f"integer buffer {k} differs between the models; they cannot be merged")
            merged[k] = ref
    if names is not None and len(names) != len(models):
        raise ValueError(f"{len(names)} names for {len(models)} models")
    specs = list(names) if names is not None else [
        str(m) if isinstance(m, (str, os.PathLike)) else type(m).__name__ for m in models]
    sources = [{"spec": spec, "fingerprint": model_fingerprint(lm)} for spec, lm in zip(specs, loaded, strict=True)]
    target = loaded[0]
    original = {k: v.clone() for k, v in states[0].items()} if not isinstance(models[0], (str, os.PathLike)) else None
    target.load_state_dict(merged)
    try:
        record = {"method": "weight interpolation (WiSE-FT / model soup)", "sources": sources,
                  "weights": weights, "fingerprint": model_fingerprint(target), **provenance()}
        with atomic_dir(out, replace=overwrite) as tmp:
            save_model(target, tmp)
            (tmp / MERGE_NAME).write_text(json.dumps(record, indent=2) + "\n")
    finally:
        if original is not None:  # a model object the caller passed in stays as it was
            target.load_state_dict(original)
    return out
