"""Experiments built on the library: the alpha sweep (the paper's reproduction study) and language
scaling, with run reuse. The library below knows nothing of this package."""

from __future__ import annotations

from .alpha_sweep import SweepRun, mono_cost, plan_runs, sweep
from .language_scaling import language_subsets, scaling, seen_groups
from .runs import train_or_reuse, train_root

__all__ = ["SweepRun", "language_subsets", "mono_cost", "plan_runs", "scaling", "seen_groups", "sweep",
           "train_or_reuse", "train_root"]
