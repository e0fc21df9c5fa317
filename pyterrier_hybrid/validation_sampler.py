"""The validation batches of a training run: one view per held-out example, packed once into
batches of one size with distinct pids and answer ids, and the batch sampler that gives the trainer
the same batches at every evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from .train_views import TrainingViews, answer_ids

__all__ = ["FixedBatchSampler", "validation_batches"]


class FixedBatchSampler(DefaultBatchSampler):
    """A fixed list of batches (the validation batches), the same at every evaluation."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool = False,
                 valid_label_columns: list[str] | None = None, generator: Any = None, seed: int = 0, *,
                 batches: Sequence[Sequence[int]]) -> None:
        size = len(batches[0]) if batches else batch_size
        super().__init__(dataset, batch_size=size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        self.batches = [list(b) for b in batches]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        yield from (list(b) for b in self.batches)


def validation_batches(views: TrainingViews, batch_size: int, *, alpha: float, seed: int = 0) -> list[list[int]]:
    """Fixed validation batches: one view per held-out example (monolingual with probability
    ``alpha`` or when it has one language, else a random ordered pair), packed in seeded order
    into batches of ``min(batch_size, n)`` rows with distinct pids and positive ids; a last
    incomplete batch is dropped (all batches have one size, as distributed evaluation needs)."""
    rng = np.random.default_rng([seed, 104729])
    chosen = []
    for i in rng.permutation(views.n_examples):
        langs = sorted(views.examples[i].langs)
        if len(langs) < 2 or rng.random() < alpha:
            q = p = langs[int(rng.integers(len(langs)))]
        else:
            a, b = rng.choice(len(langs), 2, replace=False)
            q, p = langs[int(a)], langs[int(b)]
        chosen.append(views.row[(int(i), q, p)])
    size = min(batch_size, len(chosen))
    batches: list[list[int]] = []
    open_batches: list[tuple[list[int], set, set]] = []
    for r in chosen:
        pos = answer_ids(views, int(views.example[r]), views.plang[r])
        for b, ps, qs in open_batches:
            if ps.isdisjoint(pos) and views.pid[r] not in qs:
                b.append(r)
                ps.update(pos)
                qs.add(views.pid[r])
                break
        else:
            open_batches.append(([r], set(pos), {views.pid[r]}))
        full = [ob for ob in open_batches if len(ob[0]) == size]
        for ob in full:
            batches.append(ob[0])
            open_batches.remove(ob)
    return batches

