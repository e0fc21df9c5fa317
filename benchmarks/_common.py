"""Shared helpers of the benchmark scripts: machine record (from pyterrier_hybrid.cpu), versions,
timing, atomic JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def versions() -> dict[str, str]:
    from pyterrier_hybrid._version import library_versions

    return library_versions()


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    from pyterrier_hybrid.cpu import cpu_features, cpu_flags, cpu_kind, cpu_model

    return {"cores": os.cpu_count(), "cpu_model": cpu_model(), "cpu_kind": cpu_kind(), "cpu_features": cpu_features(),
            "cpu_flags": cpu_flags(),
            "platform": platform.platform(), "loadavg_before": list(load_before),
            "loadavg_after": list(os.getloadavg())}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write JSON atomically, through the project's own ``atomic_write`` (same file mode as open())."""
    from pyterrier_hybrid.report import atomic_write

    atomic_write(Path(path), lambda p: p.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8"))


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table (numbers right-aligned)."""
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths, strict=True)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def finish(record: dict[str, Any], out: Path, text: str) -> dict[str, Any]:
    """Write the record (atomically), then print the table text, the machine line and where it went."""
    write_json(Path(out), record)
    m = record["machine"]
    flags = f" ({' '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    print()
    print(text)
    print(f"machine: {m['cores']} cores, {m['cpu_model']} [kind {m.get('cpu_kind')}]{flags}, load {m['loadavg_before'][0]:.2f} -> "
          f"{m['loadavg_after'][0]:.2f}")
    print(f"wrote {out}")
    return record
