"""What the CPU can compute natively: the facts behind the ``auto`` backend and ``auto`` precision.

This project's machines are not all the same CPU (a 2-core AMD EPYC with AVX2 only, or an Intel
Xeon with AVX-512, VNNI, AVX512-bf16 and AMX). bf16 matrix products are fast only where the
hardware has them (AMX tiles or AVX512-bf16); elsewhere torch emulates them and they are slower
than fp32. Features come from torch's own CPU checks (which also ask the OS whether AMX state is
enabled), with ``/proc/cpuinfo`` as the fallback.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["cpu_features", "cpu_flags", "cpu_kind", "cpu_model", "cpu_record", "native_bf16"]

#: Feature name -> (torch.cpu check, /proc/cpuinfo flag).
_CHECKS = {
    "avx2": ("_is_avx2_supported", "avx2"),
    "avx512": ("_is_avx512_supported", "avx512f"),
    "avx512_bf16": ("_is_avx512_bf16_supported", "avx512_bf16"),
    "vnni": ("_is_vnni_supported", "avx512_vnni"),
    "amx": ("_is_amx_tile_supported", "amx_tile"),
}


def _cpuinfo(field: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def cpu_features() -> dict[str, bool]:
    """``avx2``, ``avx512``, ``avx512_bf16``, ``vnni``, ``amx``: what this CPU (and OS) supports."""
    flags = set(_cpuinfo("flags").split())
    try:
        import torch.cpu as tc
    except ImportError:  # pragma: no cover - torch is a dependency
        tc = None
    out = {}
    for name, (check, flag) in _CHECKS.items():
        fn = getattr(tc, check, None) if tc is not None else None
        try:
            out[name] = bool(fn()) if fn is not None else flag in flags
        except Exception:  # a private torch check that changed: fall back to the kernel's flags
            out[name] = flag in flags
    return out


def native_bf16(features: dict[str, bool] | None = None) -> bool:
    """Whether bf16 matrix products run in hardware (AMX tiles or AVX512-bf16)."""
    f = cpu_features() if features is None else features
    return bool(f.get("amx") or f.get("avx512_bf16"))


def cpu_kind(features: dict[str, bool] | None = None) -> str:
    """A short name for the instruction set that decides speed and rounding: ``amx``,
    ``avx512-bf16``, ``avx512``, ``avx2`` or ``baseline``."""
    f = cpu_features() if features is None else features
    if f.get("amx"):
        return "amx"
    if f.get("avx512_bf16"):
        return "avx512-bf16"
    if f.get("avx512"):
        return "avx512"
    return "avx2" if f.get("avx2") else "baseline"


def cpu_flags() -> list[str]:
    """The kernel's SIMD flags that decide which kernels run (AVX*, AMX*, VNNI, bf16), sorted."""
    return sorted(f for f in _cpuinfo("flags").split() if f.startswith(("avx", "amx")) or "vnni" in f or "bf16" in f)


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else ``platform.processor()``."""
    return _cpuinfo("model name") or platform.processor() or "unknown"


def cpu_record() -> dict:
    """What results files record about the CPU: model, kind and features."""
    return {"model": cpu_model(), "kind": cpu_kind(), "features": cpu_features()}
