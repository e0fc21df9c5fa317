"""Encoding backends: the network of a loaded sentence-transformers model run by torch (fp32, bf16
autocast or dynamic int8), by ONNX Runtime (fp32 or dynamic int8) or by OpenVINO (fp32 or bf16
inference precision). This module is the one place the backend of an encoder is chosen
(:func:`choose_backend`: ``auto``, defaults, batch sizes) and the one place its vectors are keyed
(:func:`vectors_fingerprint`).

A backend only replaces the transformer network inside the ``SentenceTransformer``; tokenization,
prompts, length-sorted batching, pooling and normalization stay sentence-transformers' own, so the
backends differ in arithmetic only. ``onnx`` and ``openvino`` are numerically the fp32 model (cosine
1.0 to ``torch``); ``torch-bf16`` and ``openvino-bf16`` run the matrix products in bf16 (cosine >=
0.9999 to fp32; vectors stay float32); the ``*-int8`` backends quantize the linear layers and change
vectors slightly. ``auto`` (the default) is resolved per CPU kind when a model is loaded
(:data:`AUTO_BY_KIND`, :mod:`pyterrier_hybrid.cpu`): the fastest backend measured on that kind whose
XQuAD-R mAP stays within 0.005 of fp32 in every setting. Measured speed and mAP deltas per CPU kind:
``benchmarks/README.md`` (``benchmarks/bench_encoding.py``, ``benchmarks/bench_study.py``).

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, which pins transformers < 4.58
(incompatible with the transformers 5 that sentence-transformers 6 runs on here), so the export is
``torch.onnx.export`` and the quantization ``onnxruntime.quantization.quantize_dynamic``, the same
tools optimum drives. The OpenVINO model is ``openvino.convert_model`` of the loaded torch network
(dynamic batch and length; no optimum either), saved as OpenVINO IR with fp32 weights. Exported,
quantized and converted models are cached (atomically, under a lock) in
``$PYTERRIER_HYBRID_HOME/backends/<model fingerprint>[-openvino]-r<recipe>/``; a damaged OpenVINO
cache (missing or truncated files, unreadable IR) is rebuilt. The export, caching and network of
each runtime live in :mod:`.backend_onnx` and :mod:`.backend_openvino` (what they share in
:mod:`.backend_export`); the torch backends (bf16, int8) are here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .backend_export import BackendError, transformer_of
from .backend_onnx import OnnxNetwork, onnx_model_path
from .backend_openvino import OpenVinoNetwork, openvino_model_path
from .cpu import cpu_kind, native_bf16

__all__ = ["AUTO_BY_KIND", "BACKENDS", "DEFAULT_BACKEND", "DEFAULT_BATCH_SIZES", "ISA_DEPENDENT", "BackendChoice",
           "BackendError", "apply_backend", "choose_backend", "default_batch_size", "onnx_model_path",
           "openvino_model_path", "resolve_backend", "vectors_fingerprint"]

#: Backend name -> what it is.
BACKENDS = {
    "auto": "per CPU kind, the fastest backend within 0.005 mAP of fp32: openvino-bf16 on AVX512-bf16 CPUs, "
            "torch-bf16 with AMX, torch (fp32) elsewhere",
    "torch": "PyTorch fp32 (the reference)",
    "torch-bf16": "PyTorch under bf16 autocast (matrix products in bf16, vectors float32); slow without native bf16",
    "torch-int8": "PyTorch with dynamic int8 quantization of the linear layers (per-channel weights)",
    "onnx": "ONNX Runtime fp32 (same numbers as torch)",
    "onnx-int8": "ONNX Runtime with dynamic int8 quantization (per-channel weights, reduced range)",
    "openvino": "OpenVINO fp32 (inference precision f32: same numbers as torch)",
    "openvino-bf16": "OpenVINO with bf16 inference precision (matrix products in bf16, vectors float32); "
                     "f32 on CPUs without native bf16",
}
DEFAULT_BACKEND = "auto"
#: CPU kind (:func:`pyterrier_hybrid.cpu.cpu_kind`) -> the backend ``auto`` runs there: the fastest
#: backend whose full XQuAD-R mAP stays within 0.005 of fp32 in every setting, measured per kind
#: (benchmarks/README.md). AVX512-bf16 EPYC: OpenVINO bf16 (measured against torch, torch-bf16, ONNX
#: and OpenVINO fp32). AMX Xeon: torch-bf16 (measured before the OpenVINO backends existed; not yet
#: re-measured against them). AVX2 EPYC: torch fp32 (ONNX fp32 no faster, int8 beyond 0.005; OpenVINO
#: not yet measured there). AVX-512 without bf16 and older CPUs were never measured: fp32 torch.
AUTO_BY_KIND = {"amx": "torch-bf16", "avx512-bf16": "openvino-bf16", "avx512": "torch", "avx2": "torch",
                "baseline": "torch"}
#: Batch size per backend when none is given, measured per CPU kind (small fp32 batches keep
#: activations in cache on AVX2; bf16 on AMX wants larger ones, questions larger than candidates).
DEFAULT_BATCH_SIZES = {"torch": 16, "torch-bf16": 32, "torch-int8": 8, "onnx": 8, "onnx-int8": 8,
                       "openvino": 16, "openvino-bf16": 32}
#: (backend, CPU kind, text kind) -> batch size where it differs from DEFAULT_BATCH_SIZES.
_BATCH_SIZES_BY_KIND: dict[tuple[str, str, str], int] = {("torch-bf16", "amx", "query"): 64}
#: Backends whose rounding depends on the instruction set (so vector caches are kept per CPU kind).
ISA_DEPENDENT = frozenset({"torch-bf16", "torch-int8", "onnx-int8", "openvino-bf16"})
_BF16 = frozenset({"torch-bf16", "openvino-bf16"})


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


def resolve_backend(name: str | None = None, *, features: dict[str, bool] | None = None) -> str:
    """The backend that runs: ``auto`` (or ``None``) becomes :data:`AUTO_BY_KIND` of this CPU's kind;
    an explicit ``torch-bf16`` without native bf16 runs, with a warning that it is slow
    (``openvino-bf16`` there runs at f32 precision, with a warning). ``features``: CPU features
    (default: this CPU's)."""
    name = check_backend(name or DEFAULT_BACKEND)
    if name == "auto":
        return AUTO_BY_KIND[cpu_kind(features)]
    if name == "torch-bf16" and not native_bf16(features):
        warnings.warn("backend 'torch-bf16' on a CPU without native bf16 (no AMX, no AVX512-bf16): torch emulates "
                      "bf16 there and encodes slower than fp32; use backend 'auto' or 'torch'", stacklevel=3)
    if name == "openvino-bf16" and not native_bf16(features):
        warnings.warn("backend 'openvino-bf16' on a CPU without native bf16 (no AMX, no AVX512-bf16): OpenVINO "
                      "runs it at f32 precision here; use backend 'auto' or 'openvino'", stacklevel=3)
    return name


def default_batch_size(backend: str, kind: str = "document", *, features: dict[str, bool] | None = None) -> int:
    """The measured best batch size of a (resolved) backend on this CPU kind, for ``query`` or
    ``document`` texts (questions are short, so bf16 on AMX prefers larger batches of them)."""
    return _BATCH_SIZES_BY_KIND.get((backend, cpu_kind(features), kind), DEFAULT_BATCH_SIZES[backend])


@dataclass(frozen=True)
class BackendChoice:
    """What an encoder runs: the backend asked for, the one that runs, and its batch sizes."""

    requested: str
    backend: str
    query_batch_size: int
    batch_size: int
    #: the fingerprint of the fp32 weights when the model already runs on a backend, else None
    applied_fingerprint: str | None = None


def choose_backend(backend: str | None = None, *, model: Any = None, device: str | None = None,
                   batch_size: int | None = None, features: dict[str, bool] | None = None) -> BackendChoice:
    """The one place an encoder's backend is chosen.

    ``model``: a spec (loaded later) or an in-memory ``SentenceTransformer``. An in-memory model
    (e.g. one being trained) keeps torch unless a backend is asked for, and one that already runs
    on a backend keeps it (asking for another is an error); the CPU-only backends (``auto``
    included) mean torch on another ``device``. ``batch_size`` overrides the measured defaults
    (:func:`default_batch_size`) for questions and candidates alike.
    """
    in_memory = hasattr(model, "encode_query")
    applied = getattr(model, "pyterrier_hybrid_backend", None) if in_memory else None
    if applied and backend not in (None, applied["backend"]):
        raise BackendError(f"this model already runs on backend {applied['backend']!r}; load it again "
                           f"(e.g. DenseEncoder(spec, backend={backend!r})) to use {backend!r}")
    on_cpu = (device or "cpu") == "cpu"
    default = applied["backend"] if applied else "torch" if in_memory or not on_cpu else DEFAULT_BACKEND
    requested = check_backend(backend or default)
    resolved = resolve_backend(requested, features=features) if on_cpu or requested != "auto" else "torch"
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    qbs = default_batch_size(resolved, "query", features=features) if batch_size is None else batch_size
    dbs = default_batch_size(resolved, features=features) if batch_size is None else batch_size
    return BackendChoice(requested, resolved, qbs, dbs, applied["fingerprint"] if applied else None)


#: How texts are cut into batches (part of the vectors' key where the batches' shapes change the
#: rounding): ``tok``, ordered by token count (``encoders._batched_by_tokens``).
BATCHING = "tok"


def vectors_fingerprint(weights_fingerprint: str, backend: str, *, query_batch_size: int, batch_size: int,
                        features: dict[str, bool] | None = None) -> str:
    """What an encoder's vectors depend on: the model's content hash, plus the backend unless torch
    fp32, plus the CPU kind and batch sizes for backends whose rounding depends on the instruction
    set and the matrix shapes (bf16, int8), with the way texts are batched (:data:`BATCHING`). fp32 vectors differ across CPUs and batch sizes only at
    float32 rounding (<= 2e-7, far below any ranking difference), so fp32 keys omit both."""
    if backend == "torch":
        return weights_fingerprint
    isa = f"@{cpu_kind(features)}/bs{query_batch_size},{batch_size}/{BATCHING}" if backend in ISA_DEPENDENT else ""
    return f"{weights_fingerprint}+{backend}{isa}"


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
    transformer = transformer_of(model)
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
    elif backend.startswith("openvino"):
        path = openvino_model_path(model, fingerprint, cache_dir=cache_dir, verbose=verbose)
        precision = "bf16" if backend == "openvino-bf16" and native_bf16() else "f32"
        transformer.model = OpenVinoNetwork(path, transformer.auto_model.config, precision=precision, threads=threads)
    else:
        path = onnx_model_path(model, fingerprint, backend, cache_dir=cache_dir, verbose=verbose)
        transformer.model = OnnxNetwork(path, transformer.auto_model.config, threads=threads)
    model.pyterrier_hybrid_backend = {"backend": backend, "fingerprint": fingerprint}
    return model
