"""Encoding backends on the real offline model: ONNX and OpenVINO fp32 equal torch, bf16 and int8
stay close, ``auto`` follows the CPU kind, caching (and rebuilding a damaged cache), clear errors,
nothing half-written.

Every bound here holds on the three CPU kinds this project runs on (AMD EPYC, AVX2 only; AMD EPYC
with AVX-512 and AVX512-bf16, no AMX; Intel Xeon with AVX-512, VNNI, bf16 and AMX); the figures
measured on each are in the comments."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from datasets_ext import get_benchmark, load_lang
from pyterrier_hybrid.backends import BATCHING

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def texts(data_dir) -> tuple[list[str], list[str]]:
    """Questions and candidates of four scripts (Latin, Han, Arabic, Devanagari), long and short."""
    bench = get_benchmark("xquad-r")
    qs, ds = [], []
    for lang in ("de", "zh", "ar", "hi"):
        raw = load_lang(bench, lang)
        qs += [q.text for q in raw.queries[:25]]
        ds += [d.text for d in raw.docs[:25]]
    return qs, ds


@pytest.fixture(scope="module")
def torch_encoder(default_model_dir):
    from pyterrier_hybrid import DenseEncoder

    return DenseEncoder(str(default_model_dir), backend="torch", cache=False)


@pytest.fixture(scope="module")
def reference(torch_encoder, texts) -> tuple[np.ndarray, np.ndarray]:
    assert type(torch_encoder.model[0].auto_model).__name__ == "BertModel"
    return torch_encoder.encode_queries(texts[0]), torch_encoder.encode_docs(texts[1])


@pytest.fixture(scope="module")
def backend_home(tmp_path_factory):
    return tmp_path_factory.mktemp("phh")


def _encoder(default_model_dir, backend, home, **kw):
    from pyterrier_hybrid import DenseEncoder

    mp = pytest.MonkeyPatch()
    mp.setenv("PYTERRIER_HYBRID_HOME", str(home))
    try:
        return DenseEncoder(str(default_model_dir), backend=backend, cache=False, **kw)
    finally:
        mp.undo()


def test_defaults_and_fingerprints(default_model_dir, torch_encoder, backend_home):
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.backends import (
        DEFAULT_BACKEND,
        DEFAULT_BATCH_SIZES,
        default_batch_size,
        resolve_backend,
    )
    from pyterrier_hybrid.cpu import cpu_kind

    enc = _encoder(default_model_dir, None, backend_home)
    assert DEFAULT_BACKEND == "auto" and enc.backend_requested == "auto"  # chosen by benchmarks/bench_encoding.py
    assert enc.backend == resolve_backend("auto") and enc.batch_size == default_batch_size(enc.backend)
    assert enc.query_batch_size == default_batch_size(enc.backend, "query")
    if enc.backend == "torch":
        assert enc.fingerprint == enc.weights_fingerprint
    else:  # bf16 rounding depends on the instruction set: vectors are cached per CPU kind
        bs = f"{enc.query_batch_size},{enc.batch_size}"
        assert enc.backend.endswith("-bf16")
        assert enc.fingerprint == f"{enc.weights_fingerprint}+{enc.backend}@{cpu_kind()}/bs{bs}/{BATCHING}"
    enc = _encoder(default_model_dir, "openvino", backend_home)
    assert enc.batch_size == DEFAULT_BATCH_SIZES["openvino"]
    assert enc.fingerprint == enc.weights_fingerprint + "+openvino"  # fp32: not keyed by CPU kind
    enc = _encoder(default_model_dir, "onnx", backend_home)
    assert enc.batch_size == DEFAULT_BATCH_SIZES["onnx"]
    assert enc.fingerprint == enc.weights_fingerprint + "+onnx"

    assert DenseEncoder(torch_encoder.model, cache=False).backend == "torch"  # e.g. a model being trained
    # an encoder on a model that already runs on ONNX keeps its backend and fingerprint
    again = DenseEncoder(enc.model, cache=False)
    assert again.backend == "onnx" and again.fingerprint == enc.fingerprint


AMX = {"avx2": True, "avx512": True, "avx512_bf16": True, "vnni": True, "amx": True}
AVX512_BF16 = {**AMX, "amx": False}
AVX2 = {"avx2": True, "avx512": False, "avx512_bf16": False, "vnni": False, "amx": False}


@pytest.mark.parametrize(("features", "kind", "chosen"), [(AMX, "amx", "torch-bf16"),
                                                          (AVX512_BF16, "avx512-bf16", "openvino-bf16"),
                                                          (AVX2, "avx2", "torch")])
def test_auto_follows_the_cpu(default_model_dir, backend_home, monkeypatch, features, kind, chosen):
    """``auto`` per CPU kind (backends.AUTO_BY_KIND, measured in benchmarks/README.md), whatever this
    machine is: the CPU features are monkeypatched both ways."""
    import warnings

    from pyterrier_hybrid import backends, cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: features)
    assert cpu.cpu_kind() == kind and cpu.native_bf16() == (chosen != "torch")
    assert backends.resolve_backend("auto") == backends.resolve_backend(None) == chosen
    assert backends.choose_backend("auto").backend == chosen
    assert backends.choose_backend("auto", device="cuda").backend == "torch"  # CPU backends only on the CPU
    enc = _encoder(default_model_dir, "auto", backend_home)
    assert enc.backend == chosen and enc.backend_requested == "auto"
    network = {"torch-bf16": "Bf16Network", "openvino-bf16": "OpenVinoNetwork", "torch": "BertModel"}[chosen]
    assert type(enc.model[0].auto_model).__name__ == network
    if chosen == "torch":
        assert enc.fingerprint == enc.weights_fingerprint
    else:
        assert enc.fingerprint.endswith(f"+{chosen}@{kind}/bs{enc.query_batch_size},{enc.batch_size}/{BATCHING}")
        expected = {"amx": (64, 32), "avx512-bf16": (32, 32)}[kind]
        assert (enc.query_batch_size, enc.batch_size) == expected
    if chosen == "openvino-bf16":
        assert enc.model[0].auto_model.precision == "bf16"
    # bf16 asked for explicitly: allowed everywhere, with a warning where it is emulated (slow) or,
    # for OpenVINO, run at f32 precision
    for explicit in ("torch-bf16", "openvino-bf16"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert backends.resolve_backend(explicit) == explicit
        slow = [w for w in caught if "without native bf16" in str(w.message)]
        assert bool(slow) == (kind == "avx2"), [str(w.message) for w in caught]
    if kind == "avx2":
        with pytest.warns(UserWarning, match="f32 precision here"):
            ov = _encoder(default_model_dir, "openvino-bf16", backend_home)
        assert ov.model[0].auto_model.precision == "f32"
        assert ov.fingerprint.endswith(f"+openvino-bf16@avx2/bs{ov.query_batch_size},{ov.batch_size}/{BATCHING}")
    assert backends.resolve_backend("torch") == "torch"


def test_bf16_stays_close(default_model_dir, backend_home, texts, reference):
    # measured (100 questions x 100 candidates): Xeon/AMX cosine to fp32 >= 0.99998, best candidate
    # unchanged for every question; emulated bf16 (AVX2) rounds the same products the same way
    enc = _encoder(default_model_dir, "torch-bf16", backend_home)
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    assert q.dtype == d.dtype == np.float32
    assert not np.array_equal(q, reference[0]), "torch-bf16 should really compute in bf16"
    assert min((q * reference[0]).sum(1).min(), (d * reference[1]).sum(1).min()) > 0.9995
    agree = (np.argmax(q @ d.T, 1) == np.argmax(reference[0] @ reference[1].T, 1)).mean()
    assert agree >= 0.95, agree


def test_onnx_equals_torch(default_model_dir, backend_home, texts, reference):
    enc = _encoder(default_model_dir, "onnx", backend_home)
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    assert (q * reference[0]).sum(1).min() > 0.99999
    assert (d * reference[1]).sum(1).min() > 0.99999
    one = enc.encode_queries(texts[0][:1])  # batch of one, no padding
    assert float(one[0] @ reference[0][0]) > 0.99999
    # same ranking of candidates for every question
    assert np.array_equal(np.argsort(-(q @ d.T), axis=1)[:, :5], np.argsort(-(reference[0] @ reference[1].T), axis=1)[:, :5])


@pytest.mark.parametrize(("backend", "min_cos"), [("onnx-int8", 0.98), ("torch-int8", 0.95)])
def test_int8_backends_are_quantized_and_bounded(default_model_dir, backend_home, texts, reference, backend, min_cos):
    """What this is for: the int8 backends really quantize (vectors move) and their loss is bounded.

    int8 kernels differ per instruction set (AVX2 vpmaddubsw vs AVX-512 VNNI / AMX), so the bounds are
    set below what both CPU kinds measured on these 100 questions x 100 candidates:
    min cosine to fp32: onnx-int8 0.99 (Xeon) / > 0.98 (EPYC), torch-int8 0.976 (Xeon) / > 0.9 (EPYC);
    fp32's best candidate kept at rank 1: 0.88-0.89 (Xeon), 0.87-0.9+ (EPYC) - near-ties among random
    candidates flip; kept within the top 3: 0.99-1.0 (Xeon).
    """
    enc = _encoder(default_model_dir, backend, backend_home)
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    cos = np.concatenate([(q * reference[0]).sum(1), (d * reference[1]).sum(1)])
    assert cos.max() < 0.9999, f"{backend} should really be quantized"
    assert cos.min() > min_cos, (backend, cos.min())
    scores, ref_top = q @ d.T, np.argmax(reference[0] @ reference[1].T, 1)
    rank = (scores > scores[np.arange(len(scores)), ref_top][:, None]).sum(1)  # 0-based rank of fp32's best
    assert (rank == 0).mean() >= 0.8 and (rank < 3).mean() >= 0.85, (backend, (rank == 0).mean(), (rank < 3).mean())


def test_openvino_equals_torch(default_model_dir, backend_home, texts, reference):
    # measured on the AVX512-bf16 EPYC (480 questions + 240 candidates): min cosine to torch fp32
    # 1.000000 at batch 16, 32 and 64 (f32 inference precision is set explicitly: OpenVINO's own
    # default is bf16 on bf16 CPUs, which would round like openvino-bf16)
    enc = _encoder(default_model_dir, "openvino", backend_home)
    assert type(enc.model[0].auto_model).__name__ == "OpenVinoNetwork" and enc.model[0].auto_model.precision == "f32"
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    assert q.dtype == d.dtype == np.float32
    assert (q * reference[0]).sum(1).min() > 0.99999
    assert (d * reference[1]).sum(1).min() > 0.99999
    one = enc.encode_queries(texts[0][:1])  # batch of one, no padding: dynamic shapes
    assert float(one[0] @ reference[0][0]) > 0.99999
    assert np.array_equal(np.argsort(-(q @ d.T), axis=1)[:, :5], np.argsort(-(reference[0] @ reference[1].T), axis=1)[:, :5])


def test_openvino_bf16_stays_close(default_model_dir, backend_home, texts, reference):
    # measured on the AVX512-bf16 EPYC (this session, 480 XQuAD-R questions + 240 candidates of ar, de,
    # en, zh): min cosine to fp32 0.99997 (issue 25's run: 0.99997); bf16 on AMX rounds the same
    # products (torch-bf16 there: >= 0.99998). On CPUs without native bf16 it runs at f32 precision
    # (cosine 1.0), so the bounds (0.9995, 95 % same best candidate) hold on every kind
    from pyterrier_hybrid.cpu import native_bf16

    enc = _encoder(default_model_dir, "openvino-bf16", backend_home)
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    assert q.dtype == d.dtype == np.float32
    cos = np.concatenate([(q * reference[0]).sum(1), (d * reference[1]).sum(1)])
    if native_bf16():
        assert enc.model[0].auto_model.precision == "bf16"
        assert cos.max() < 0.999999 or not np.array_equal(q, reference[0]), "openvino-bf16 should compute in bf16"
    assert cos.min() > 0.9995, cos.min()
    agree = (np.argmax(q @ d.T, 1) == np.argmax(reference[0] @ reference[1].T, 1)).mean()
    assert agree >= 0.95, agree


def test_openvino_cache_reused_and_rebuilt_when_damaged(default_model_dir, backend_home, monkeypatch):
    from pyterrier_hybrid import backend_openvino

    _encoder(default_model_dir, "openvino", backend_home)  # converted by the tests above or now
    (folder,) = (backend_home / "backends").glob("*-openvino-r*")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.bin", "model.xml"]
    real = backend_openvino._convert_openvino
    calls = []

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(backend_openvino, "_convert_openvino", counting)
    _encoder(default_model_dir, "openvino-bf16", backend_home)  # both precisions share one IR
    assert calls == []
    with open(folder / "model.bin", "r+b") as f:  # a truncated weights file (e.g. a full disk)
        f.truncate(1000)
    enc = _encoder(default_model_dir, "openvino", backend_home)
    assert calls == [1] and (folder / "model.bin").stat().st_size > 10**8
    assert enc.encode_queries(["wie hoch ist der Berg?"]).shape == (1, 384)
    (folder / "model.xml").write_text("<net>")  # an IR that no longer parses
    _encoder(default_model_dir, "openvino", backend_home)
    assert calls == [1, 1]
    (folder / "meta.json").unlink()  # a conversion cut short before its meta was written
    _encoder(default_model_dir, "openvino", backend_home)
    assert calls == [1, 1, 1]
    left = [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert left == [], left


def test_missing_openvino_is_a_clear_error(default_model_dir, backend_home, monkeypatch):
    from pyterrier_hybrid import cpu
    from pyterrier_hybrid.backends import BackendError

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(BackendError, match=r"need the openvino package \(openvino is missing\): pip install openvino"):
        _encoder(default_model_dir, "openvino", backend_home)
    monkeypatch.setattr(cpu, "cpu_features", lambda: AVX512_BF16)  # where auto is OpenVINO
    with pytest.raises(BackendError, match="backend 'auto' on this CPU kind.*pip install openvino"):
        _encoder(default_model_dir, "auto", backend_home)


def test_exported_models_are_cached(default_model_dir, backend_home, monkeypatch):
    from pyterrier_hybrid import backend_onnx

    _encoder(default_model_dir, "onnx-int8", backend_home)  # built by the tests above or now
    files = sorted(p.name for p in (backend_home / "backends").rglob("*.onnx"))  # (the OpenVINO IR is .xml/.bin)
    assert files == ["model-int8.onnx", "model.onnx"]

    def boom(*a, **k):
        raise AssertionError("should not export or quantize again")

    monkeypatch.setattr(backend_onnx, "_export", boom)
    monkeypatch.setattr(backend_onnx, "_quantize", boom)
    _encoder(default_model_dir, "onnx", backend_home)
    _encoder(default_model_dir, "onnx-int8", backend_home)


def test_failed_export_leaves_nothing(default_model_dir, tmp_path, monkeypatch):
    from pyterrier_hybrid import backend_onnx

    def fail(model, names, out):
        out.write_bytes(b"half an onnx file")
        raise RuntimeError("export interrupted")

    monkeypatch.setattr(backend_onnx, "_export", fail)
    with pytest.raises(RuntimeError, match="export interrupted"):
        _encoder(default_model_dir, "onnx", tmp_path)
    left = [p for p in (tmp_path / "backends").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert left == []


def test_backend_errors(default_model_dir, torch_encoder, backend_home, monkeypatch):
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.backends import BackendError

    with pytest.raises(BackendError, match="unknown backend 'fp16'; valid: auto, torch, torch-bf16, torch-int8, onnx, "
                                           "onnx-int8, openvino, openvino-bf16"):
        DenseEncoder(torch_encoder.model, backend="fp16", cache=False)
    onnx_model = _encoder(default_model_dir, "onnx", backend_home).model
    with pytest.raises(BackendError, match="already runs on backend 'onnx'"):
        DenseEncoder(onnx_model, backend="torch-int8", cache=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendError, match=r"pip install 'pyterrier-hybrid\[onnx\]'"):
        _encoder(default_model_dir, "onnx", backend_home)


def test_in_memory_model_is_not_modified(torch_encoder, backend_home, monkeypatch):
    from pyterrier_hybrid import DenseEncoder

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(backend_home))
    net = torch_encoder.model[0].auto_model
    enc = DenseEncoder(torch_encoder.model, backend="onnx", cache=False)
    assert torch_encoder.model[0].auto_model is net  # the caller's model keeps its torch network
    assert type(enc.model[0].auto_model).__name__ == "OnnxNetwork"


def test_vector_cache_is_per_backend(default_model_dir, backend_home, tmp_path, texts, monkeypatch):
    from pyterrier_hybrid import DenseEncoder, VectorCache

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(backend_home))
    cache = VectorCache(tmp_path)
    a = DenseEncoder(str(default_model_dir), backend="onnx", cache=cache)
    b = DenseEncoder(str(default_model_dir), backend="onnx-int8", cache=cache)
    ids = [f"q{i}" for i in range(10)]
    va = a.cached_vectors("x", "query", ids, texts[0][:10])
    vb = b.cached_vectors("x", "query", ids, texts[0][:10])
    assert len(list(tmp_path.iterdir())) == 2 and not np.array_equal(va, vb)
