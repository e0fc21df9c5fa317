"""Figures: one matplotlib set-up (headless Agg backend) and one way to save a PNG atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fs import atomic_write

__all__ = ["fit_width", "save_png", "subplots"]

DPI = 110


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def fit_width(fig: Any, *, margin: float = 0.1) -> None:
    """``tight_layout``, widening ``fig`` first where a title or label would be cut off (a long
    title over a small heatmap: one system, two languages)."""
    fig.tight_layout()
    for _ in range(6):
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        width = fig.get_figwidth()
        overflow = max(0.0, -box.x0) + max(0.0, box.x1 - width)
        if overflow == 0:
            return
        fig.set_figwidth(width + overflow + margin)
        fig.tight_layout()


def save_png(fig: Any, path: str | os.PathLike) -> Path:
    """Lay out ``fig`` (:func:`fit_width`), write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fit_width(fig)
        atomic_write(path, lambda p: fig.savefig(p, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return path
