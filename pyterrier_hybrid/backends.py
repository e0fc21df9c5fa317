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
cache (missing or truncated files, unreadable IR) is rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cpu import cpu_kind, native_bf16
from .fs import atomic_write_text, file_digest, home_dir, locked, locked_build

__all__ = ["AUTO_BY_KIND", "BACKENDS", "DEFAULT_BACKEND", "DEFAULT_BATCH_SIZES", "ISA_DEPENDENT", "BackendChoice",
           "BackendError", "apply_backend", "choose_backend", "default_batch_size", "onnx_model_path",
           "openvino_model_path", "resolve_backend", "vectors_fingerprint"]

log = logging.getLogger(__name__)

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
_ONNX_EXTRA = "pip install 'pyterrier-hybrid[onnx]' (onnxruntime and onnx)"
_OPENVINO_INSTALL = "pip install openvino (a dependency of pyterrier-hybrid: reinstall it, or pip install 'pyterrier-hybrid')"
#: Bump when the export or quantization recipe changes (cached files are keyed by it).
_RECIPE = 1
#: Bump when the OpenVINO conversion recipe changes (its cache folder is keyed by it).
_OV_RECIPE = 1


class BackendError(ValueError):
    """An unknown backend, a missing package, or a model the backend cannot run."""


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


def vectors_fingerprint(weights_fingerprint: str, backend: str, *, query_batch_size: int, batch_size: int,
                        features: dict[str, bool] | None = None) -> str:
    """What an encoder's vectors depend on: the model's content hash, plus the backend unless torch
    fp32, plus the CPU kind and batch sizes for backends whose rounding depends on the instruction
    set and the matrix shapes (bf16, int8). fp32 vectors differ across CPUs and batch sizes only at
    float32 rounding (<= 2e-7, far below any ranking difference), so fp32 keys omit both."""
    if backend == "torch":
        return weights_fingerprint
    isa = f"@{cpu_kind(features)}/bs{query_batch_size},{batch_size}" if backend in ISA_DEPENDENT else ""
    return f"{weights_fingerprint}+{backend}{isa}"


def _require_onnx() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise BackendError(f"the ONNX backends need onnxruntime and onnx ({e.name} is missing): {_ONNX_EXTRA}") from e
    return onnxruntime


def _require_openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise BackendError(f"the OpenVINO backends (and backend 'auto' on this CPU kind) need the openvino package "
                           f"({e.name} is missing): {_OPENVINO_INSTALL}") from e
    return openvino


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
    folder = _cache_folder(cache_dir, fingerprint, f"r{_RECIPE}")
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
    _require_openvino()
    folder = _cache_folder(cache_dir, fingerprint, f"openvino-r{_OV_RECIPE}")
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


def _cache_folder(cache_dir: str | os.PathLike | None, fingerprint: str, recipe: str) -> Path:
    """Where an exported model of ``fingerprint`` is cached: ``<cache_dir or home/backends>/<fp>-<recipe>``."""
    root = Path(cache_dir) if cache_dir is not None else home_dir() / "backends"
    return root / f"{fingerprint[:32]}-{recipe}"


def _convert_openvino(model: Any, fingerprint: str, out: Path) -> None:
    ov = _require_openvino()
    net = _transformer(model).auto_model
    names = _input_names(model)
    was_training = net.training
    net.eval()
    feats = _features(model, ["query: a short text", "query: a somewhat longer text to pad the batch"])
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
        ov = _require_openvino()
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
    elif backend.startswith("openvino"):
        path = openvino_model_path(model, fingerprint, cache_dir=cache_dir, verbose=verbose)
        precision = "bf16" if backend == "openvino-bf16" and native_bf16() else "f32"
        transformer.model = OpenVinoNetwork(path, transformer.auto_model.config, precision=precision, threads=threads)
    else:
        path = onnx_model_path(model, fingerprint, backend, cache_dir=cache_dir, verbose=verbose)
        transformer.model = OnnxNetwork(path, transformer.auto_model.config, threads=threads)
    model.pyterrier_hybrid_backend = {"backend": backend, "fingerprint": fingerprint}
    return model
