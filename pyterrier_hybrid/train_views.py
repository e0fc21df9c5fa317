"""The training views of parallel examples: one dataset row per (example, query language, passage
language) with its negatives, the rows :class:`~pyterrier_hybrid.sampler.HybridBatchSampler` draws
batches from (see :mod:`pyterrier_hybrid.sampler` for the layout).

Columns, in this order (the loss reads them by position): ``anchor`` (the query), ``positive`` (the
answer in the passage language), ``positive_2..m`` (``num_positives`` m > 1: the answer in other
languages of the question), ``negative_1..k``, ``translation`` (``translation=True``: the answer in
another language of the question) and ``label`` (with either of the last two: per row ``[number of
real positive columns, 1 if its translation is real else 0]``; a padded column holds a copy of the
row's positive and is masked by the loss, :mod:`pyterrier_hybrid.losses`). Every choice is drawn from
generators seeded by ``seed`` alone, so the views (like the batch plan, a function of seed and epoch)
are the same in every run with that seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .train_config import NEGATIVE_LANGUAGES
from .train_data import ParallelExample

__all__ = ["TrainingViews", "answer_ids", "build_views"]


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
    #: per row, the language of each negative column (``negative_language``)
    negative_langs: list[tuple[str, ...]] = field(default_factory=list, repr=False)
    #: per row, the languages of its real positive columns (the first is the passage language)
    positive_langs: list[tuple[str, ...]] = field(default_factory=list, repr=False)
    #: per row, the language of its ``translation`` column (``None``: no translation column / none real)
    translation_langs: list[str | None] = field(default_factory=list, repr=False)
    #: whether rows hold the answer in other languages too (extra positives or a translation)
    multi_answer: bool = False

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
    negative_language: str = "passage",
    num_positives: int = 1,
    translation: bool = False,
) -> TrainingViews:
    """One row per (example, query language, passage language); ``cross=False`` keeps only the
    monolingual views. Each (example, language) gets ``num_negatives`` negatives: its hard
    negatives (the other sentences of its answer's paragraph; a seeded choice when it has more),
    topped up when it has fewer by positives of other examples in the same language (seeded, never
    the example's own positive). ``negative_language`` says which language's negatives a view
    (i, q, p) takes: ``passage`` p, ``query`` q, ``other`` one seeded language of the question
    other than q and p (else other than p, else p), ``mix`` each negative from a seeded language of
    the question (uniform over its languages). ``num_positives`` m: the row also holds its answer
    in up to m - 1 other languages of the question (seeded order), padded as the module says.
    ``translation``: the row holds its answer in one seeded other language of the question."""
    from datasets import Dataset

    examples = list(examples)
    _check_options(examples, num_negatives, negative_language, num_positives)
    negatives = _negatives(examples, num_negatives, np.random.default_rng([seed, 7919]))
    rows = _Rows(num_negatives=num_negatives, num_positives=num_positives, translation=translation, seed=seed)
    for i, ex in enumerate(examples):
        langs = sorted(ex.langs)
        for q in langs:
            for p in langs:
                if q != p and not cross:
                    continue
                nl = _negative_langs(negative_language, langs, q, p, num_negatives, rows.rng_neg)
                rows.add(i, ex, langs, q, p, nl, [negatives[(i, lang)][k] for k, lang in enumerate(nl)])
    return TrainingViews(
        dataset=Dataset.from_dict(rows.cols),
        pid=np.array(rows.pid, dtype=object), example=np.array(rows.example, dtype=np.int64),
        qlang=np.array(rows.qlang, dtype=object), plang=np.array(rows.plang, dtype=object),
        positive_id=np.array(rows.posid, dtype=object), examples=examples, num_negatives=num_negatives, row=rows.row,
        negative_langs=rows.neg_langs, positive_langs=rows.pos_langs, translation_langs=rows.tr_langs,
        multi_answer=rows.labelled,
    )


def _check_options(examples: list[ParallelExample], num_negatives: int, negative_language: str,
                   num_positives: int) -> None:
    if not examples:
        raise ValueError("the training source has no examples (after the language filter)")
    if num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
    if negative_language not in NEGATIVE_LANGUAGES:
        raise ValueError(f"unknown negative_language {negative_language!r}; valid: {', '.join(NEGATIVE_LANGUAGES)}")
    if isinstance(num_positives, bool) or not isinstance(num_positives, int) or num_positives < 1:
        raise ValueError(f"num_positives must be a positive integer, got {num_positives!r}")


class _Rows:
    """The text columns and per-row metadata of the views, filled one view at a time."""

    def __init__(self, *, num_negatives: int, num_positives: int, translation: bool, seed: int) -> None:
        # separate streams: the default views (passage negatives, one positive) draw exactly what they always drew
        self.rng_neg, self.rng_pos, self.rng_tr = (np.random.default_rng([seed, 7919, k]) for k in (1, 2, 3))
        self.num_positives, self.translation = num_positives, translation
        self.labelled = num_positives > 1 or translation
        self.cols: dict[str, list[Any]] = {"anchor": [], "positive": []}
        for t in range(2, num_positives + 1):
            self.cols[f"positive_{t}"] = []
        for k in range(num_negatives):
            self.cols[f"negative_{k + 1}"] = []
        if translation:
            self.cols["translation"] = []
        if self.labelled:
            self.cols["label"] = []
        self.pid: list[str] = []
        self.example: list[int] = []
        self.qlang: list[str] = []
        self.plang: list[str] = []
        self.posid: list[str] = []
        self.neg_langs: list[tuple[str, ...]] = []
        self.pos_langs: list[tuple[str, ...]] = []
        self.tr_langs: list[str | None] = []
        self.row: dict[tuple[int, str, str], int] = {}

    def add(self, i: int, ex: ParallelExample, langs: list[str], q: str, p: str, neg_langs: tuple[str, ...],
            negatives: list[str]) -> None:
        """View (i, q, p) of example ``ex`` (its languages ``langs``) with its negatives (and their languages)."""
        cols = self.cols
        self.row[(i, q, p)] = len(self.pid)
        cols["anchor"].append(ex.langs[q].query)
        cols["positive"].append(ex.langs[p].positive)
        for k, negative in enumerate(negatives):
            cols[f"negative_{k + 1}"].append(negative)
        self.neg_langs.append(neg_langs)
        others = [lang for lang in langs if lang != p]
        extra = [others[j] for j in self.rng_pos.permutation(len(others))][:self.num_positives - 1] \
            if self.num_positives > 1 else []
        for t in range(2, self.num_positives + 1):
            lang = extra[t - 2] if t - 2 < len(extra) else p
            cols[f"positive_{t}"].append(ex.langs[lang].positive)
        self.pos_langs.append((p, *extra))
        tr = others[int(self.rng_tr.integers(len(others)))] if (self.translation and others) else None
        if self.translation:
            cols["translation"].append(ex.langs[tr or p].positive)
        self.tr_langs.append(tr)
        if self.labelled:
            cols["label"].append([1 + len(extra), int(tr is not None)])
        self.pid.append(ex.pid)
        self.example.append(i)
        self.qlang.append(q)
        self.plang.append(p)
        self.posid.append(ex.langs[p].positive_id)


def _negative_langs(rule: str, langs: list[str], q: str, p: str, k: int, rng: np.random.Generator
                    ) -> tuple[str, ...]:
    """The language of each of the ``k`` negatives of view (q, p) of a question in ``langs``."""
    if rule == "passage" or k == 0:
        return (p,) * k
    if rule == "query":
        return (q,) * k
    if rule == "mix":
        return tuple(langs[int(j)] for j in rng.integers(len(langs), size=k))
    pool = [lang for lang in langs if lang not in (q, p)] or [lang for lang in langs if lang != p] or [p]
    return (pool[int(rng.integers(len(pool)))],) * k


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


def answer_ids(views: TrainingViews, example: int, lang: str) -> tuple[str, ...]:
    """The answer ids a view brings into a batch: its positive's, and with extra positive or
    translation columns (which hold the answer in other languages) those of all its question's languages."""
    ex = views.examples[example]
    if views.multi_answer:
        return tuple(item.positive_id for item in ex.langs.values())
    return (ex.langs[lang].positive_id,)

