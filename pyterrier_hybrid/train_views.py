"""The training views of parallel examples: one dataset row per (example, query language, passage
language) with its negatives, the rows :class:`~pyterrier_hybrid.sampler.HybridBatchSampler` draws
batches from (see :mod:`pyterrier_hybrid.sampler` for the layout)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .train_data import ParallelExample

__all__ = ["TrainingViews", "build_views"]


@dataclass
class TrainingViews:
    """The materialised rows (``dataset``) and their metadata, aligned by row index."""

    dataset: Any  # datasets.Dataset with anchor, positive, negative_1..k
    pid: np.ndarray
    example: np.ndarray  # index into ``examples``
    qlang: np.ndarray
    plang: np.ndarray
    positive_id: np.ndarray
    examples: list[ParallelExample]
    num_negatives: int
    row: dict[tuple[int, str, str], int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.pid)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({lang for ex in self.examples for lang in ex.langs}))

    @property
    def n_examples(self) -> int:
        return len(self.examples)

    def positive_of(self, example: int, lang: str) -> str:
        return self.examples[example].langs[lang].positive_id


def build_views(
    examples: Sequence[ParallelExample],
    *,
    num_negatives: int = 1,
    seed: int = 0,
    cross: bool = True,
) -> TrainingViews:
    """One row per (example, query language, passage language); ``cross=False`` keeps only the
    monolingual views. Each (example, passage language) gets ``num_negatives`` negatives: its hard
    negatives (a seeded choice when it has more), topped up when it has fewer by positives of
    other examples in the same language (seeded, never the example's own positive)."""
    from datasets import Dataset

    examples = list(examples)
    if not examples:
        raise ValueError("the training source has no examples (after the language filter)")
    if num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
    negatives = _negatives(examples, num_negatives, np.random.default_rng([seed, 7919]))
    cols: dict[str, list[str]] = {"anchor": [], "positive": []}
    for k in range(num_negatives):
        cols[f"negative_{k + 1}"] = []
    pid, example, qlang, plang, posid = [], [], [], [], []
    row: dict[tuple[int, str, str], int] = {}
    for i, ex in enumerate(examples):
        langs = sorted(ex.langs)
        for q in langs:
            for p in langs:
                if q != p and not cross:
                    continue
                row[(i, q, p)] = len(pid)
                cols["anchor"].append(ex.langs[q].query)
                cols["positive"].append(ex.langs[p].positive)
                for k, neg in enumerate(negatives[(i, p)]):
                    cols[f"negative_{k + 1}"].append(neg)
                pid.append(ex.pid)
                example.append(i)
                qlang.append(q)
                plang.append(p)
                posid.append(ex.langs[p].positive_id)
    return TrainingViews(
        dataset=Dataset.from_dict(cols),
        pid=np.array(pid, dtype=object), example=np.array(example, dtype=np.int64),
        qlang=np.array(qlang, dtype=object), plang=np.array(plang, dtype=object),
        positive_id=np.array(posid, dtype=object), examples=examples, num_negatives=num_negatives, row=row,
    )


def _negatives(examples: list[ParallelExample], num_negatives: int, rng: np.random.Generator
               ) -> dict[tuple[int, str], list[str]]:
    """``num_negatives`` negative passages per (example, language): its hard negatives (a seeded
    choice when it has more), topped up by other examples' positives in that language."""
    pool: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        for lang in ex.langs:
            pool.setdefault(lang, []).append(i)
    negatives: dict[tuple[int, str], list[str]] = {}
    for i, ex in enumerate(examples):
        for lang in sorted(ex.langs):
            item = ex.langs[lang]
            hard = list(item.negatives)
            if len(hard) > num_negatives:
                hard = [hard[j] for j in sorted(rng.choice(len(hard), num_negatives, replace=False))]
            others = None
            while len(hard) < num_negatives:
                j = pool[lang][int(rng.integers(len(pool[lang])))]
                if j != i and examples[j].langs[lang].positive != item.positive:
                    hard.append(examples[j].langs[lang].positive)
                    continue
                if others is None:  # rare: fall back to the explicit list
                    others = [j for j in pool[lang] if j != i and examples[j].langs[lang].positive != item.positive]
                    if not others:
                        raise ValueError(f"cannot find {num_negatives} negatives for example {ex.pid!r} in {lang!r}: "
                                         f"no hard negatives and no other example in {lang!r}")
                hard.append(examples[others[int(rng.integers(len(others)))]].langs[lang].positive)
            negatives[(i, lang)] = hard
    return negatives
