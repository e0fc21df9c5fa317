"""The ONNX Runtime backends (``onnx``, ``onnx-int8``): the network exported with
``torch.onnx.export`` (sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, which
pins transformers < 4.58), quantized with ``onnxruntime.quantization.quantize_dynamic``, cached
atomically under a lock, and run in place of the transformers network."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .backend_export import EXAMPLE_TEXTS, BackendError, cache_folder, input_names, tokenized, transformer_of
from .fs import atomic_write_text, locked_build

__all__ = ["ONNX_BACKENDS", "OnnxNetwork", "onnx_model_path", "require_onnx"]

log = logging.getLogger(__name__)

#: The backends this module runs.
ONNX_BACKENDS = ("onnx", "onnx-int8")
_ONNX_EXTRA = "pip install 'pyterrier-hybrid[onnx]' (onnxruntime and onnx)"
#: Bump when the export or quantization recipe changes (cached files are keyed by it).
_RECIPE = 1


def require_onnx() -> Any:
    """``onnxruntime`` (with ``onnx``), or a :class:`BackendError` saying how to install them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise BackendError(f"the ONNX backends need onnxruntime and onnx ({e.name} is missing): {_ONNX_EXTRA}") from e
    return onnxruntime


class _ExportWrapper(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, names: list[str]):
        super().__init__()
        self.net, self.names = net, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.net(**dict(zip(self.names, inputs, strict=True)), return_dict=True).last_hidden_state


def onnx_model_path(model: Any, fingerprint: str, backend: str = "onnx", *, cache_dir: str | os.PathLike | None = None,
                    verbose: bool = False) -> Path:
    """The cached ONNX file of ``model`` for ``backend`` (``onnx`` or ``onnx-int8``), exported /
    quantized on first use."""
    if backend not in ONNX_BACKENDS:
        raise BackendError(f"{backend!r} is not an ONNX backend; valid: {', '.join(ONNX_BACKENDS)}")
    require_onnx()
    folder = cache_folder(cache_dir, fingerprint, f"r{_RECIPE}")
    fp32 = folder / "model.onnx"
    names = input_names(model)
    if not fp32.exists():
        with locked_build(fp32) as tmp:
            if tmp is not None:
                if verbose:
                    log.warning("exporting the model to ONNX (once; cached in %s)", folder)
                _export(model, names, tmp)
                meta = {"fingerprint": fingerprint, "inputs": names, "recipe": _RECIPE}
                atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))
    if backend == "onnx":
        return fp32
    int8 = folder / "model-int8.onnx"
    if not int8.exists():
        with locked_build(int8) as tmp:
            if tmp is not None:
                if verbose:
                    log.warning("quantizing the ONNX model to int8 (once; cached in %s)", folder)
                _quantize(fp32, tmp)
    return int8


def _export(model: Any, names: list[str], out: Path) -> None:
    net = transformer_of(model).auto_model
    was_training = net.training
    net.eval()
    feats = tokenized(model, EXAMPLE_TEXTS)
    args = tuple(feats[n].to(net.device) for n in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(_ExportWrapper(net, names).cpu(), tuple(a.cpu() for a in args), str(out),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    net.train(was_training)


def _quantize(src: Path, out: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel weights and reduced range: AVX2 CPUs without VNNI saturate u8s8 products otherwise
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})


class OnnxNetwork(torch.nn.Module):
    """Stands in for the transformers network inside a sentence-transformers ``Transformer``:
    same inputs, returns ``{"last_hidden_state": tensor}`` computed by ONNX Runtime."""

    def __init__(self, path: Path, config: Any, *, threads: int | None = None):
        super().__init__()
        ort = require_onnx()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.path = path

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> dict:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        missing = [n for n in self.names if feeds.get(n) is None]
        if missing:
            raise BackendError(f"the ONNX model needs inputs {missing} that the tokenizer did not produce")
        arrays = {n: feeds[n].detach().cpu().numpy().astype("int64", copy=False) for n in self.names}
        out = self.session.run(["last_hidden_state"], arrays)[0]
        return {"last_hidden_state": torch.from_numpy(out).to(input_ids.device)}

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

