"""Hybrid batch sampling (arXiv 2408.10536) on top of sentence-transformers' batch samplers.

:func:`build_views` materialises ONE ``datasets.Dataset`` with the text columns ``anchor``,
``positive``, ``negative_1..k`` and one row per *view* of an example: ``(example, query
language, passage language)``, monolingual (``q == p``) and cross-lingual (``q != p``). The
per-row metadata (pid, languages, positive id) stays in numpy arrays outside the dataset, so
the data collator only tokenizes text.

:class:`HybridBatchSampler` draws every batch of an epoch from ``numpy.random.default_rng([seed,
epoch])``: with probability ``alpha`` a monolingual batch (one language, uniform among the
training languages; ``batch_size`` distinct examples having it), else a cross-lingual batch
(``batch_size`` distinct examples with >= 2 languages, each with its own ordered pair ``q != p``
drawn uniformly among its languages). No pid and no positive id occurs twice in a batch (with extra
positive or translation columns, no answer id of any of a question's languages).
An epoch is ``ceil(n_examples / batch_size)`` batches, each drawn independently (an example
may appear in several batches of an epoch, never twice in one).

``mix`` decides how many batches are monolingual. ``random`` (the paper's rule): each batch is
monolingual with probability ``alpha`` and its language is drawn uniformly, so a 60-step run at
alpha 0.5 may realise anywhere from ~22 to ~38 monolingual batches. ``exact``: over the training
budget of ``budget`` batches (default: one epoch), exactly ``round(alpha * budget)`` batches
(half rounded up) are monolingual, at seeded random positions, and their languages are balanced
(each training language ``floor`` or ``ceil`` of its share, the extra ones chosen by the seed).
The schedule is a function of ``seed`` alone; batches past the budget fall back to ``random``.

``language_weights`` (``{lang: weight}``, languages not named weigh 1; ``None``: uniform, the rule
above) changes how often a language is drawn: ``exact`` gives language L ``n_mono * w_L / sum(w)``
monolingual batches (largest remainders, ties in the seeded language order), ``random`` draws a mono
batch's language with probability ``w_L / sum(w)``, and a cross-lingual row draws its ordered pair
with ``numpy``'s weighted sampling without replacement over its question's languages (the query side
with probability proportional to ``w``, the passage side likewise among the rest).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from .train_views import TrainingViews, answer_ids, build_views  # views re-exported: the sampler's input
from .validation_sampler import FixedBatchSampler, validation_batches  # re-exported: their former home

__all__ = [
    "MIXES",
    "SAMPLERS",
    "BatchInfo",
    "FixedBatchSampler",
    "HybridBatchSampler",
    "SamplerFactory",
    "TrainingViews",
    "build_views",
    "validation_batches",
]


#: How the mono / cross-lingual batch counts are realised (see the module docstring).
MIXES = ("exact", "random")


class BatchInfo(NamedTuple):
    """One planned batch: ``kind`` (``mono`` / ``cross``), per row the query and passage
    languages, and the dataset row indices."""

    kind: str
    query_langs: tuple[str, ...]
    passage_langs: tuple[str, ...]
    indices: tuple[int, ...]


_DRAW = object()


def _fill(rng: np.random.Generator, candidates: np.ndarray, batch_size: int, accept) -> list[int]:
    """Draw ``batch_size`` distinct candidates that ``accept`` (which records what it accepts)."""
    chosen: list[int] = []
    tried: set[int] = set()
    m = len(candidates)
    if m > 4 * batch_size:  # rejection sampling: cheap for large pools
        for _ in range(20 * batch_size):
            j = int(rng.integers(m))
            if j in tried:
                continue
            tried.add(j)
            if accept(int(candidates[j])):
                chosen.append(int(candidates[j]))
                if len(chosen) == batch_size:
                    return chosen
    for j in rng.permutation(m):
        if int(j) in tried:
            continue
        if accept(int(candidates[j])):
            chosen.append(int(candidates[j]))
            if len(chosen) == batch_size:
                return chosen
    raise ValueError(f"only {len(chosen)} of the {m} candidate examples can share a batch (distinct pids and "
                     f"positive ids); batch_size {batch_size} is too large")


class HybridBatchSampler(DefaultBatchSampler):
    """Mono (prob. ``alpha``) or cross-lingual (prob. ``1 - alpha``) batches over :class:`TrainingViews`.

    Build it for the trainer with ``functools.partial(HybridBatchSampler, views=..., alpha=...)``
    (see :class:`SamplerFactory`). ``languages`` restricts the training languages (default: all of
    ``views``). The torch ``generator`` is ignored: the plan of an epoch depends only on
    ``(seed, epoch)`` and is identical on every rank, so accelerate's ``BatchSamplerShard`` gives
    each rank its own batches (batch ``i`` to rank ``i % world_size``).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        views: TrainingViews,
        alpha: float = 0.5,
        languages: Sequence[str] | None = None,
        mix: str = "random",
        budget: int | None = None,
        language_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1] (1 = X-X-mono, 0 = X-Y), got {alpha}")
        if dataset is not None and len(dataset) != len(views):
            raise ValueError(f"the dataset has {len(dataset)} rows but the views {len(views)}")
        if mix not in MIXES:
            raise ValueError(f"unknown batch mix {mix!r}; valid: {', '.join(MIXES)}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"budget must be a positive number of batches, got {budget!r}")
        self.views, self.alpha, self.mix, self.budget = views, float(alpha), mix, budget
        if views.n_examples == 0:
            raise ValueError("the training source has no examples")
        all_langs = views.languages
        if languages is not None:
            bad = [lang for lang in languages if lang not in all_langs]
            if bad:
                raise ValueError(f"no training example has language {', '.join(bad)}; present: {', '.join(all_langs)}")
        self.languages = tuple(languages) if languages is not None else all_langs
        self.language_weights = self._check_weights(language_weights)
        self._index_examples()
        self._check_pools(batch_size)
        self._plans: dict[int, list[BatchInfo]] = {}
        self._schedule_cache: list[str | None] | None = None

    def _check_weights(self, weights: dict[str, float] | None) -> dict[str, float] | None:
        if not weights:
            return None
        bad = sorted(set(weights) - set(self.languages))
        if bad:
            raise ValueError(f"language_weights names {', '.join(bad)}, not a training language; training languages: "
                             f"{', '.join(self.languages)}")
        out = {lang: float(weights.get(lang, 1.0)) for lang in self.languages}
        if not all(math.isfinite(w) and w > 0 for w in out.values()):
            raise ValueError(f"language weights must be finite and > 0, got {weights!r}")
        return out

    def _probs(self, langs: Sequence[str]) -> np.ndarray:
        w = np.array([self.language_weights[lang] for lang in langs], dtype=np.float64)
        return w / w.sum()

    def _index_examples(self) -> None:
        """The examples available for a monolingual batch of each training language, those with >= 2
        training languages (cross-lingual batches), and each example's training languages."""
        keep = set(self.languages)
        mono: dict[str, list[int]] = {}
        multi = []
        for i, ex in enumerate(self.views.examples):
            langs = [lang for lang in sorted(ex.langs) if lang in keep]
            for lang in langs:
                mono.setdefault(lang, []).append(i)
            if len(langs) >= 2:
                multi.append(i)
        self._mono: dict[str, np.ndarray] = {k: np.array(v, dtype=np.int64) for k, v in mono.items()}
        self._multi = np.array(multi, dtype=np.int64)
        self._ex_langs = [tuple(lang for lang in sorted(ex.langs) if lang in keep) for ex in self.views.examples]
        self.n_examples = sum(1 for langs in self._ex_langs if langs)

    def _check_pools(self, batch_size: int) -> None:
        """Every batch kind alpha asks for can be filled with ``batch_size`` distinct examples."""
        if self.alpha > 0:
            small = {lang: len(self._mono[lang]) for lang in self.languages if len(self._mono[lang]) < batch_size}
            if small:
                raise ValueError(
                    f"batch_size {batch_size} is larger than the examples available for monolingual batches in "
                    + ", ".join(f"{k} ({v})" for k, v in small.items())
                    + "; lower the batch size or leave those languages out (languages=)"
                )
        if self.alpha < 1:
            if len(self._multi) == 0:
                raise ValueError(
                    "cross-lingual (X-Y) batches need examples in at least 2 languages, but no example of this "
                    "source has 2 training languages; use sampling='x-x-mono' (alpha=1) or a parallel source"
                )
            if len(self._multi) < batch_size:
                raise ValueError(f"batch_size {batch_size} is larger than the {len(self._multi)} examples with >= 2 "
                                 f"languages available for cross-lingual batches; lower the batch size")

    def __len__(self) -> int:
        return math.ceil(self.n_examples / self.batch_size)

    def plan(self, epoch: int | None = None) -> list[BatchInfo]:
        """The batches of ``epoch`` (default: the current one), a function of ``(seed, epoch)``."""
        epoch = self.epoch if epoch is None else int(epoch)
        if epoch not in self._plans:
            if len(self._plans) > 4:
                self._plans.clear()
            self._plans[epoch] = self._make_plan(epoch)
        return self._plans[epoch]

    def schedule(self) -> list[str | None]:
        """The ``exact`` mix over the budget: per batch its monolingual language, or ``None`` for a
        cross-lingual batch (a function of ``seed``, ``alpha``, the languages and the budget)."""
        if self._schedule_cache is None:
            n = self.budget or len(self)
            n_mono = math.floor(self.alpha * n + 0.5)
            rng = np.random.default_rng([self.seed, 0x6D6978])
            order = [self.languages[i] for i in rng.permutation(len(self.languages))]
            if self.language_weights is None:
                langs = (order * (n_mono // len(order) + 1))[:n_mono]  # balanced; extras to the first in order
            else:
                langs = _weighted_langs(order, self._probs(order), n_mono)
            where = np.sort(rng.choice(n, n_mono, replace=False))
            sched: list[str | None] = [None] * n
            for pos, k in zip(where, rng.permutation(len(langs)), strict=True):
                sched[int(pos)] = langs[int(k)]
            self._schedule_cache = sched
        return self._schedule_cache

    def counts(self, steps: int | None = None) -> dict[str, Any]:
        """The realised mix of the first ``steps`` batches (default: the budget, or one epoch):
        ``{"mono": n, "cross": n, "mono_languages": {lang: n}}``, with ``language_weights`` also
        ``"cross_sides": {lang: n}`` (cross-lingual rows having the language as query or passage side)."""
        steps = steps or self.budget or len(self)
        n, mono, langs = len(self), 0, dict.fromkeys(self.languages, 0)
        sides = dict.fromkeys(self.languages, 0)
        for step in range(steps):
            info = self.plan(step // n)[step % n]
            if info.kind == "mono":
                mono += 1
                langs[info.query_langs[0]] += 1
            else:
                for lang in (*info.query_langs, *info.passage_langs):
                    sides[lang] += 1
        out = {"mono": mono, "cross": steps - mono, "mono_languages": langs}
        if self.language_weights is not None:  # weighted runs also record how often each language was a cross side
            out["cross_sides"] = sides
        return out

    def _make_plan(self, epoch: int) -> list[BatchInfo]:
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self)
        if self.mix == "random":
            return [self._batch(rng) for _ in range(n)]
        sched, start = self.schedule(), epoch * n
        return [self._batch(rng, sched[start + i] if start + i < len(sched) else _DRAW) for i in range(n)]

    def _batch(self, rng: np.random.Generator, choice: Any = _DRAW) -> BatchInfo:
        """One batch: ``choice`` is its monolingual language, ``None`` for cross-lingual, ``_DRAW``
        to draw the kind and language (the ``random`` mix; the default)."""
        views, bs = self.views, self.batch_size
        pids: set[str] = set()
        posids: set[str] = set()
        rows: list[int] = []
        def take(i: int, q: str, p: str) -> bool:
            """Add view (i, q, p) unless its pid or positive is already in the batch."""
            ex = views.examples[i]
            ids = answer_ids(views, i, p)
            if ex.pid in pids or not posids.isdisjoint(ids):
                return False
            pids.add(ex.pid)
            posids.update(ids)
            rows.append(views.row[(i, q, p)])
            return True

        if choice is _DRAW:
            if rng.random() >= self.alpha:
                choice = None
            elif self.language_weights is None:
                choice = self.languages[int(rng.integers(len(self.languages)))]
            else:
                choice = self.languages[int(rng.choice(len(self.languages), p=self._probs(self.languages)))]
        if choice is not None:
            lang = choice
            _fill(rng, self._mono[lang], bs, lambda i: take(i, lang, lang))
            return BatchInfo("mono", (lang,) * bs, (lang,) * bs, tuple(rows))

        def accept_cross(i: int) -> bool:
            langs = self._ex_langs[i]
            p = None if self.language_weights is None else self._probs(langs)
            qi, pi = rng.choice(len(langs), 2, replace=False, p=p)
            return take(i, langs[int(qi)], langs[int(pi)])

        _fill(rng, self._multi, bs, accept_cross)
        idx = np.array(rows)
        return BatchInfo("cross", tuple(views.qlang[idx]), tuple(views.plang[idx]), tuple(rows))

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.plan(self.epoch):
            yield list(batch.indices)


def _weighted_langs(order: Sequence[str], probs: np.ndarray, n: int) -> list[str]:
    """``n`` languages in proportion to ``probs`` (largest remainders, ties to the first in ``order``),
    listed round-robin in ``order`` (uniform probabilities give the balanced list ``order * k``)."""
    share = probs * n
    counts = np.floor(share + 1e-9).astype(int)
    rest = share - counts
    for j in sorted(range(len(order)), key=lambda j: (-round(rest[j], 9), j))[:n - int(counts.sum())]:
        counts[j] += 1
    out: list[str] = []
    while len(out) < n:
        for j, lang in enumerate(order):
            if counts[j] > 0:
                out.append(lang)
                counts[j] -= 1
    return out


#: Batch samplers by the name a training strategy gives (``train_config.Strategy.sampler``); each is
#: called as ``cls(dataset, views=, alpha=, mix=, budget=, batch_size=, drop_last=, seed=...)``.
SAMPLERS: dict[str, type[HybridBatchSampler]] = {"hybrid": HybridBatchSampler}


class SamplerFactory:
    """The ``batch_sampler=`` callable of the training arguments: the hybrid sampler for the
    training dataset, the fixed validation batches for the evaluation dataset (the trainer asks
    the same callable for both)."""

    def __init__(self, train_dataset: Any, train_sampler: functools.partial, eval_dataset: Any = None,
                 eval_batches: Sequence[Sequence[int]] | None = None) -> None:
        self.train_dataset, self.train_sampler = train_dataset, train_sampler
        self.eval_dataset, self.eval_batches = eval_dataset, eval_batches
        self.last_train_sampler: HybridBatchSampler | None = None

    def __call__(self, dataset: Any, batch_size: int, drop_last: bool = False,
                 valid_label_columns: list[str] | None = None, generator: Any = None, seed: int = 0):
        kwargs = dict(batch_size=batch_size, drop_last=drop_last, valid_label_columns=valid_label_columns,
                      generator=generator, seed=seed)
        if dataset is self.train_dataset:
            self.last_train_sampler = self.train_sampler(dataset, **kwargs)
            return self.last_train_sampler
        if self.eval_dataset is not None and dataset is self.eval_dataset:
            return FixedBatchSampler(dataset, batches=self.eval_batches or [], **kwargs)
        return DefaultBatchSampler(range(len(dataset)), **kwargs)
