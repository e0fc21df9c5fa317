"""Distance to the physical limit: FLOPs of a BERT-style encoder per batch (from the model config),
the CPU's peak FLOP rate (vector width x FMA units x clock), and a probe counting what an encoder's
network is given (:class:`NetworkProbe`). The arithmetic is written out in benchmarks/README.md
("fraction of peak")."""

from __future__ import annotations

import functools
import os
import time
from typing import Any


def linear_flops_per_token(config: Any) -> int:
    """FLOPs per (padded) token of the matrix products with weights: per layer the Q, K, V and output
    projections (4 h^2 multiply-adds) and the feed-forward pair (2 h i), 2 FLOPs per multiply-add."""
    h, i, n_layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return 2 * n_layers * (4 * h * h + 2 * h * i)


def batch_flops(config: Any, batch: int, length: int) -> int:
    """FLOPs of one padded batch: the linear layers per token, plus attention's two products
    (Q K^T and softmax x V: 2 n^2 h multiply-adds per sequence and layer). Embedding lookups, layer
    norms, softmax and GELU are not counted (elementwise, < 2 % of the total at these lengths)."""
    h, n_layers = config.hidden_size, config.num_hidden_layers
    return batch * length * linear_flops_per_token(config) + batch * 2 * n_layers * 2 * length * length * h


def _cpuinfo(field: str) -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def flops_per_cycle(features: dict[str, bool], vendor: str, family: int) -> dict[str, Any]:
    """Peak FLOPs per cycle and core, fp32 and bf16, from the instruction set and the core's vector
    units (2 FMA pipes on every core kind here; their width differs):

    - Intel with AVX-512 (Xeon): 2 x 512-bit FMA = 2 x 16 lanes x 2 = 64 fp32; ``vdpbf16ps`` does 2
      bf16 products per fp32 lane = 128 bf16; AMX (TMUL): 1024 bf16 (a 16x32 by 32x16 tile product,
      8192 multiply-adds, every 16 cycles).
    - AMD Zen 4 (family 25 with AVX-512): AVX-512 runs on 2 x 256-bit FMA pipes (two passes per
      512-bit op) = 2 x 8 x 2 = 32 fp32; ``vdpbf16ps`` = 64 bf16. Zen 5 (family 26): full 512-bit
      pipes, 64 fp32 and 128 bf16.
    - AVX2 only (2 x 256-bit FMA): 32 fp32; bf16 is emulated (no faster than fp32).
    """
    intel = vendor == "GenuineIntel"
    if features.get("avx512") and (intel or family >= 26):
        fp32 = 64
    else:
        fp32 = 32 if features.get("avx2") else 8
    bf16 = 1024 if features.get("amx") else 2 * fp32 if features.get("avx512_bf16") else fp32
    basis = ("AMX" if features.get("amx") else "AVX512-bf16" if features.get("avx512_bf16")
             else "AVX-512" if features.get("avx512") else "AVX2")
    return {"fp32": fp32, "bf16": bf16, "basis": f"{vendor or 'unknown'} family {family}, {basis}"}


def peak(features: dict[str, bool]) -> dict[str, Any]:
    """This CPU's peak GFLOP/s (fp32, bf16) at the clock /proc/cpuinfo reports (under a hypervisor
    that is the nominal / TSC clock; turbo can exceed it, so fractions of peak may be overstated by
    the turbo ratio)."""
    vendor = _cpuinfo("vendor_id")
    try:
        family = int(_cpuinfo("cpu family") or 0)
    except ValueError:
        family = 0
    try:
        mhz = float(_cpuinfo("cpu MHz") or "nan")
    except ValueError:
        mhz = float("nan")
    import torch

    cores = torch.get_num_threads() or os.cpu_count() or 1
    per_cycle = flops_per_cycle(features, vendor, family)
    ghz = mhz / 1000
    return {**per_cycle, "clock_ghz": ghz, "cores": cores,
            "fp32_gflops": cores * ghz * per_cycle["fp32"], "bf16_gflops": cores * ghz * per_cycle["bf16"]}


def measured_gemm(n: int = 1024, repeats: int = 5) -> dict[str, float]:
    """The best GFLOP/s of torch's own n x n matrix product (fp32 and bf16) on this machine: what
    oneDNN / the BLAS reaches on a large, cache-friendly GEMM (a practical ceiling)."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        best = min(_time(lambda a=a, b=b: torch.mm(a, b)) for _ in range(repeats))
        out[f"{name}_gflops"] = 2 * n ** 3 / best / 1e9
    return out


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class NetworkProbe:
    """While installed on an encoder's model: counts what its network computes (batches, padded and
    real tokens, FLOPs) and times the tokenizer and the network."""

    def __init__(self, model: Any, config: Any):
        self.model, self.config = model, config
        self.stats = {"batches": 0, "padded_tokens": 0, "real_tokens": 0, "flops": 0, "tokenize_s": 0.0,
                      "network_s": 0.0}

    def __enter__(self) -> NetworkProbe:
        # sentence-transformers calls the network's ``forward`` method itself (no module hooks run),
        # so the probe wraps that method on the instance (signature kept for its keyword filtering)
        self.net = net = self.model[0].auto_model
        forward = net.forward

        @functools.wraps(forward)
        def timed_forward(*args: Any, **kwargs: Any) -> Any:
            ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
            b, n = ids.shape
            self.stats["batches"] += 1
            self.stats["padded_tokens"] += b * n
            self.stats["real_tokens"] += int(mask.sum()) if mask is not None else b * n
            self.stats["flops"] += batch_flops(self.config, b, n)
            start = time.perf_counter()
            out = forward(*args, **kwargs)
            self.stats["network_s"] += time.perf_counter() - start
            return out

        net.forward = timed_forward
        preprocess = self.model.preprocess

        def timed_preprocess(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            out = preprocess(*a, **k)
            self.stats["tokenize_s"] += time.perf_counter() - start
            return out

        self.model.preprocess = timed_preprocess  # instance attribute: what encode() calls
        return self

    def __exit__(self, *exc: Any) -> None:
        del self.net.forward
        del self.model.preprocess
