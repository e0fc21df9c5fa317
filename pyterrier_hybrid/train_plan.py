"""What a training run trains on, prepared before any model is loaded: the examples and their
validation split, the training views, the strategy's batch sampler (its realised batch mix) and
the fixed validation batches."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .sampler import SAMPLERS, validation_batches
from .train_config import STRATEGIES, TrainConfig
from .train_data import describe_source, load_source, split_validation
from .train_views import TrainingViews, build_views

__all__ = ["RunData", "prepare_data"]


@dataclass
class RunData:
    """A run's data: examples, the training views and sampler, validation batches, steps."""

    examples: list
    train_examples: list
    validation_examples: list
    views: TrainingViews
    sampler: Any  # functools.partial of the strategy's batch sampler (HybridBatchSampler)
    languages: tuple[str, ...]
    steps_per_epoch: int
    batches: dict  # the realised mix: mono / cross counts, mono batches per language
    steps: int
    save_steps: int
    validation_views: TrainingViews | None
    eval_batches: list[list[int]]



def prepare_data(source: Any, cfg: TrainConfig, budget: int | None = None) -> RunData:
    """Load and split the examples, build views and the batch plan (all checks before any model).
    ``budget``: the steps the exact batch mix spreads over (default: ``cfg.steps``)."""
    examples = load_source(source, languages=cfg.languages, max_examples=cfg.max_examples)
    if not examples:
        raise ValueError(f"the training source {describe_source(source)} has no examples"
                         + (f" in {', '.join(cfg.languages)}" if cfg.languages else ""))
    train_ex, val_ex = split_validation(examples, cfg.eval_fraction, cfg.seed)
    cross = cfg.alpha < 1
    view_options = dict(num_negatives=cfg.num_negatives, seed=cfg.seed, cross=cross,
                        negative_language=cfg.negative_language, num_positives=cfg.num_positives,
                        translation=cfg.translation_weight > 0)
    views = build_views(train_ex, **view_options)
    budget = budget or cfg.steps
    sampler = functools.partial(SAMPLERS[STRATEGIES[cfg.sampling].sampler], views=views, alpha=cfg.alpha,
                                mix=cfg.batch_mix, budget=budget, language_weights=cfg.language_weights)
    probe = sampler(views.dataset, batch_size=cfg.batch_size, drop_last=False, seed=cfg.seed)  # validates
    steps = cfg.steps or len(probe)
    batches = {**probe.counts(steps), "mix": cfg.batch_mix, "budget": budget or len(probe)}
    val_views, eval_batches = None, []
    if val_ex:
        val_views = build_views(val_ex, **view_options)
        eval_batches = validation_batches(val_views, cfg.batch_size, alpha=cfg.alpha, seed=cfg.seed)
    return RunData(examples, train_ex, val_ex, views, sampler, tuple(probe.languages), len(probe), batches, steps,
                 min(cfg.save_steps or steps, steps), val_views, eval_batches)
