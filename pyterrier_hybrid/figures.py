"""Figures: one matplotlib set-up (headless Agg backend) and one way to save a PNG atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fs import atomic_write

__all__ = ["save_png", "subplots"]

DPI = 110


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_png(fig: Any, path: str | os.PathLike) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fig.tight_layout()
        atomic_write(path, lambda p: fig.savefig(p, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return path
