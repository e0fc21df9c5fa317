"""Encoding backends: the network of a loaded sentence-transformers model run by torch (fp32, bf16
autocast or dynamic int8) or by ONNX Runtime (fp32 or dynamic int8).

A backend only replaces the transformer network inside the ``SentenceTransformer``; tokenization,
prompts, length-sorted batching, pooling and normalization stay sentence-transformers' own, so the
backends differ in arithmetic only. ``onnx`` is numerically the fp32 model (cosine 1.0 to ``torch``);
``torch-bf16`` runs the matrix products in bf16 (cosine >= 0.9999 to fp32; vectors stay float32);
the ``*-int8`` backends quantize the linear layers and change vectors slightly. ``auto`` (the
default) is resolved per CPU when a model is loaded: ``torch-bf16`` where the CPU computes bf16
natively (AMX or AVX512-bf16, :mod:`pyterrier_hybrid.cpu`), ``torch`` fp32 elsewhere. Measured
speed and mAP deltas per CPU kind: ``benchmarks/README.md`` (``benchmarks/bench_encoding.py``).

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, which pins transformers < 4.58
(incompatible with the transformers 5 that sentence-transformers 6 runs on here), so the export is
``torch.onnx.export`` and the quantization ``onnxruntime.quantization.quantize_dynamic``, the same
tools optimum drives. Exported and quantized models are cached (atomically, under a lock) in
``$PYTERRIER_HYBRID_HOME/backends/<model fingerprint>/``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .cpu import cpu_kind, native_bf16
from .fs import atomic_write_text, home_dir, locked_build

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "DEFAULT_BATCH_SIZES", "ISA_DEPENDENT", "BackendError", "apply_backend", "default_batch_size",
           "onnx_model_path", "resolve_backend"]

log = logging.getLogger(__name__)

#: Backend name -> what it is.
BACKENDS = {
    "auto": "torch-bf16 where the CPU computes bf16 natively (AMX or AVX512-bf16), torch (fp32) elsewhere",
    "torch": "PyTorch fp32 (the reference)",
    "torch-bf16": "PyTorch under bf16 autocast (matrix products in bf16, vectors float32); slow without native bf16",
    "torch-int8": "PyTorch with dynamic int8 quantization of the linear layers (per-channel weights)",
    "onnx": "ONNX Runtime fp32 (same numbers as torch)",
    "onnx-int8": "ONNX Runtime with dynamic int8 quantization (per-channel weights, reduced range)",
}
#: Chosen by measurement (benchmarks/bench_encoding.py, on both CPU kinds): the fastest backend whose
#: XQuAD-R mAP stays within 0.005 of fp32 in every setting. On an AVX2-only EPYC that is torch fp32
#: (ONNX fp32 no faster, both int8 backends lose more than 0.005); on a Xeon with AMX it is bf16.
DEFAULT_BACKEND = "auto"
#: Batch size per backend when none is given, measured per CPU kind (small fp32 batches keep
#: activations in cache on AVX2; bf16 on AMX wants larger ones, questions larger than candidates).
DEFAULT_BATCH_SIZES = {"torch": 16, "torch-bf16": 32, "torch-int8": 8, "onnx": 8, "onnx-int8": 8}
#: (backend, CPU kind, text kind) -> batch size where it differs from DEFAULT_BATCH_SIZES.
_BATCH_SIZES_BY_KIND: dict[tuple[str, str, str], int] = {("torch-bf16", "amx", "query"): 64}
#: Backends whose rounding depends on the instruction set (so vector caches are kept per CPU kind).
ISA_DEPENDENT = frozenset({"torch-bf16", "torch-int8", "onnx-int8"})
_ONNX_EXTRA = "pip install 'pyterrier-hybrid[onnx]' (onnxruntime and onnx)"
#: Bump when the export or quantization recipe changes (cached files are keyed by it).
_RECIPE = 1


class BackendError(ValueError):
    """An unknown backend, a missing package, or a model the backend cannot run."""


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


def resolve_backend(name: str | None = None, *, features: dict[str, bool] | None = None) -> str:
    """The backend that runs: ``auto`` (or ``None``) becomes ``torch-bf16`` where the CPU has native
    bf16 and ``torch`` elsewhere; an explicit ``torch-bf16`` without native bf16 runs, with a
    warning that it is slow. ``features``: CPU features (default: this CPU's)."""
    name = check_backend(name or DEFAULT_BACKEND)
    if name == "auto":
        return "torch-bf16" if native_bf16(features) else "torch"
    if name == "torch-bf16" and not native_bf16(features):
        warnings.warn("backend 'torch-bf16' on a CPU without native bf16 (no AMX, no AVX512-bf16): torch emulates "
                      "bf16 there and encodes slower than fp32; use backend 'auto' or 'torch'", stacklevel=3)
    return name


def default_batch_size(backend: str, kind: str = "document", *, features: dict[str, bool] | None = None) -> int:
    """The measured best batch size of a (resolved) backend on this CPU kind, for ``query`` or
    ``document`` texts (questions are short, so bf16 on AMX prefers larger batches of them)."""
    return _BATCH_SIZES_BY_KIND.get((backend, cpu_kind(features), kind), DEFAULT_BATCH_SIZES[backend])


def _require_onnx() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise BackendError(f"the ONNX backends need onnxruntime and onnx ({e.name} is missing): {_ONNX_EXTRA}") from e
    return onnxruntime


def _transformer(model: Any) -> Any:
    first = model[0]
    if not hasattr(first, "auto_model"):
        raise BackendError(f"backends other than 'torch' need a model whose first module is a sentence-transformers "
                           f"Transformer, got {type(first).__name__}")
    return first


def _features(model: Any, texts: list[str]) -> dict[str, Any]:
    return model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)


def _input_names(model: Any) -> list[str]:
    """The network inputs the model's tokenizer produces (e.g. input_ids, attention_mask[, token_type_ids])."""
    feats = _features(model, ["a b"])
    return [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats]


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
    check_backend(backend)
    if not backend.startswith("onnx"):
        raise BackendError(f"{backend!r} is not an ONNX backend")
    _require_onnx()
    root = Path(cache_dir) if cache_dir is not None else home_dir() / "backends"
    folder = root / f"{fingerprint[:32]}-r{_RECIPE}"
    fp32 = folder / "model.onnx"
    names = _input_names(model)
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
    net = _transformer(model).auto_model
    was_training = net.training
    net.eval()
    feats = _features(model, ["query: a short text", "query: a somewhat longer text to pad the batch"])
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
        ort = _require_onnx()
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


class Bf16Network(torch.nn.Module):
    """Stands in for the transformers network: its linear layers hold bf16 weights (cast once, as
    autocast would cast them at every call) and it runs under ``torch.autocast("cpu", bfloat16)``
    (matrix products in bf16; embeddings, layer norms and softmax in fp32). Returns float32 hidden
    states, so pooling, normalization and stored vectors stay float32."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.eval()
        for module in self.net.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
        self.config = net.config

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.net(*args, **kwargs)
        out["last_hidden_state"] = out["last_hidden_state"].float()
        return out

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


def apply_backend(model: Any, backend: str, *, fingerprint: str, threads: int | None = None,
                  cache_dir: str | os.PathLike | None = None, verbose: bool = False) -> Any:
    """Run ``model``'s network with ``backend`` (in place; returns the model). Inference only.

    ``auto`` is resolved for this CPU first (:func:`resolve_backend`). The model remembers its
    backend and the fingerprint of its fp32 weights (``model.pyterrier_hybrid_backend``), so
    encoders built on it later key their caches right.
    """
    backend = resolve_backend(backend)
    if backend == "torch":
        return model
    if getattr(model, "pyterrier_hybrid_backend", None):
        raise BackendError(f"the model already runs on backend {model.pyterrier_hybrid_backend['backend']!r}")
    transformer = _transformer(model)
    if str(getattr(model, "device", "cpu")) != "cpu":
        raise BackendError(f"backend {backend!r} runs on CPU; use backend='torch' with device={model.device}")
    if backend == "torch-int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notices
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            transformer.model = quantize_dynamic(transformer.auto_model.eval(),
                                                 {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    elif backend == "torch-bf16":
        transformer.model = Bf16Network(transformer.auto_model)
    else:
        path = onnx_model_path(model, fingerprint, backend, cache_dir=cache_dir, verbose=verbose)
        transformer.model = OnnxNetwork(path, transformer.auto_model.config, threads=threads)
    model.pyterrier_hybrid_backend = {"backend": backend, "fingerprint": fingerprint}
    return model
