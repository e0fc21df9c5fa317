"""The OpenVINO backends (``openvino``, ``openvino-bf16``): ``openvino.convert_model`` of the loaded
torch network (dynamic batch and length; no optimum), saved as OpenVINO IR with fp32 weights,
cached atomically under a lock (a damaged cache is rebuilt), and compiled for the CPU at ``f32`` or
``bf16`` inference precision in place of the transformers network."""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from .backend_export import EXAMPLE_TEXTS, BackendError, cache_folder, input_names, tokenized, transformer_of
from .fs import atomic_write_text, file_digest, locked, locked_build

__all__ = ["OpenVinoNetwork", "openvino_model_path", "require_openvino"]

log = logging.getLogger(__name__)
_OPENVINO_INSTALL = "pip install openvino (a dependency of pyterrier-hybrid: reinstall it, or pip install 'pyterrier-hybrid')"
#: Bump when the OpenVINO conversion recipe changes (its cache folder is keyed by it).
_OV_RECIPE = 1


def require_openvino() -> Any:
    """``openvino``, or a :class:`BackendError` saying how to install it."""
    try:
        import openvino
    except ImportError as e:
        raise BackendError(f"the OpenVINO backends (and backend 'auto' on this CPU kind) need the openvino package "
                           f"({e.name} is missing): {_OPENVINO_INSTALL}") from e
    return openvino


class _OpenVinoWrapper(torch.nn.Module):
    """The transformers network with named tensor inputs (so the converted model's inputs keep the
    tokenizer's names) returning the last hidden state."""

    def __init__(self, net: torch.nn.Module, names: list[str]):
        super().__init__()
        self.net, self.names = net, names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        return self.net(**kw, return_dict=True).last_hidden_state


def _ov_files_ok(folder: Path) -> bool:
    """Whether a cached OpenVINO folder is complete: its meta.json names the IR files with the sizes
    and the IR text's digest they had when written."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        return all((folder / name).stat().st_size == size for name, size in meta["sizes"].items()) and \
            file_digest(folder / "model.xml") == meta["xml_sha256"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def openvino_model_path(model: Any, fingerprint: str, *, cache_dir: str | os.PathLike | None = None,
                        verbose: bool = False) -> Path:
    """The cached OpenVINO IR (``model.xml`` + ``model.bin``, fp32 weights) of ``model``, converted
    on first use and again when the cached files are damaged."""
    require_openvino()
    folder = cache_folder(cache_dir, fingerprint, f"openvino-r{_OV_RECIPE}")
    if folder.exists() and not _ov_files_ok(folder):
        with locked(folder):
            if folder.exists() and not _ov_files_ok(folder):
                log.warning("the cached OpenVINO model in %s is damaged: converting again", folder)
                shutil.rmtree(folder)
    if not folder.exists():
        with locked_build(folder) as tmp:
            if tmp is not None:
                if verbose:
                    log.warning("converting the model to OpenVINO (once; cached in %s)", folder)
                _convert_openvino(model, fingerprint, tmp)
    return folder / "model.xml"


def _convert_openvino(model: Any, fingerprint: str, out: Path) -> None:
    ov = require_openvino()
    net = transformer_of(model).auto_model
    names = input_names(model)
    was_training = net.training
    net.eval()
    feats = tokenized(model, EXAMPLE_TEXTS)
    example = {n: feats[n].cpu() for n in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        converted = ov.convert_model(_OpenVinoWrapper(net, names).cpu(), example_input=example,
                                     input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names])
    net.train(was_training)
    out.mkdir()
    ov.save_model(converted, str(out / "model.xml"), compress_to_fp16=False)  # keep fp32 weights
    sizes = {n: (out / n).stat().st_size for n in ("model.xml", "model.bin")}
    meta = {"fingerprint": fingerprint, "inputs": names, "recipe": _OV_RECIPE, "openvino": ov.get_version(),
            "sizes": sizes, "xml_sha256": file_digest(out / "model.xml")}
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))


class OpenVinoNetwork(torch.nn.Module):
    """Stands in for the transformers network inside a sentence-transformers ``Transformer``:
    same inputs, returns ``{"last_hidden_state": tensor}`` (float32) computed by OpenVINO's CPU
    plugin at ``precision`` ``f32`` or ``bf16`` (one stream of ``threads`` threads, default: torch's
    thread count, i.e. the physical cores)."""

    def __init__(self, path: Path, config: Any, *, precision: str = "f32", threads: int | None = None):
        super().__init__()
        ov = require_openvino()
        core = ov.Core()
        props = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                 "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", props)
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]
        self.config, self.path, self.precision = config, path, precision

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> dict:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        missing = [n for n in self.names if feeds.get(n) is None]
        if missing:
            raise BackendError(f"the OpenVINO model needs inputs {missing} that the tokenizer did not produce")
        arrays = {n: feeds[n].detach().cpu().numpy().astype("int64", copy=False) for n in self.names}
        out = self.request.infer(arrays)[self.compiled.output(0)]
        # the request reuses its output buffer: copy before the next batch
        return {"last_hidden_state": torch.from_numpy(out.copy()).to(input_ids.device)}

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

