"""HybridBatchSampler on the real MLQA-R examples (no model): mixing, purity, uniqueness,
determinism, distributed sharding and errors."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard

from pyterrier_hybrid.sampler import (
    FixedBatchSampler,
    HybridBatchSampler,
    SamplerFactory,
    build_views,
    validation_batches,
)
from pyterrier_hybrid.train_data import LangItem, ParallelExample, filter_languages, from_lareqa


@pytest.fixture(scope="module")
def examples(data_dir):
    return from_lareqa("mlqa-r")


@pytest.fixture(scope="module")
def views(examples):
    return build_views(examples, num_negatives=2, seed=0)


def sampler(views, alpha, batch_size=8, seed=0, **kw):
    return HybridBatchSampler(views.dataset, batch_size=batch_size, drop_last=False, seed=seed,
                              views=views, alpha=alpha, **kw)


def batches(s, epochs):
    return [b for e in range(epochs) for b in s.plan(e)]


def test_views_dataset_layout(views, examples):
    assert views.dataset.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert len(views) == sum(len(ex.langs) ** 2 for ex in examples) == 820 * 16 + 263 * 9 + 65 * 4
    # metadata lives outside the dataset and is aligned with its rows
    for r in (0, 1234, len(views) - 1):
        ex = views.examples[views.example[r]]
        row = views.dataset[r]
        assert row["anchor"] == ex.langs[views.qlang[r]].query
        assert row["positive"] == ex.langs[views.plang[r]].positive
        assert views.positive_id[r] == ex.langs[views.plang[r]].positive_id
        assert views.pid[r] == ex.pid
        assert row["positive"] not in (row["negative_1"], row["negative_2"])
    mono = views.qlang == views.plang
    assert mono.sum() == sum(len(ex.langs) for ex in examples)


def test_missing_hard_negatives_are_filled_deterministically():
    mk = lambda i, negs: ParallelExample(f"p{i}", {"en": LangItem(f"q{i}", f"pos{i}", negs, f"d{i}")})  # noqa: E731
    exs = [mk(0, ()), mk(1, ("hard1",)), mk(2, ()), mk(3, ())]
    a = build_views(exs, num_negatives=2, seed=3)
    b = build_views(exs, num_negatives=2, seed=3)
    assert a.dataset.to_dict() == b.dataset.to_dict()
    for r in range(len(a)):
        row = a.dataset[r]
        negs = [row["negative_1"], row["negative_2"]]
        assert row["positive"] not in negs
        assert all(n.startswith("pos") or n == "hard1" for n in negs)
    assert a.dataset[1]["negative_1"] == "hard1"


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_mono_fraction_within_binomial_bounds(views, alpha):
    s = sampler(views, alpha)
    bs = batches(s, 10)
    n = len(bs)
    assert n == 10 * math.ceil(1148 / 8)
    frac = sum(b.kind == "mono" for b in bs) / n
    assert abs(frac - alpha) <= 4 * math.sqrt(alpha * (1 - alpha) / n) + 1e-12


def test_batch_purity_and_uniqueness(views):
    s = sampler(views, 0.5, batch_size=16)
    langs_seen = set()
    for b in batches(s, 4):
        idx = np.array(b.indices)
        assert len(idx) == 16
        assert list(views.qlang[idx]) == list(b.query_langs) and list(views.plang[idx]) == list(b.passage_langs)
        assert len(set(views.pid[idx])) == 16, "a pid twice in one batch"
        assert len(set(views.positive_id[idx])) == 16, "a positive id twice in one batch"
        if b.kind == "mono":
            assert len(set(b.query_langs) | set(b.passage_langs)) == 1
            langs_seen.add(b.query_langs[0])
        else:
            assert all(q != p for q, p in zip(b.query_langs, b.passage_langs, strict=True))
            assert len(set(zip(b.query_langs, b.passage_langs, strict=True))) > 1  # each row draws its own pair
    assert langs_seen == {"ar", "de", "en", "es", "hi", "vi", "zh"}


def test_iteration_follows_plan_and_epoch(views):
    s = sampler(views, 0.5)
    assert len(s) == math.ceil(1148 / 8)
    assert [list(b.indices) for b in s.plan(0)] == list(s)
    s.set_epoch(3)
    assert list(s) == [list(b.indices) for b in s.plan(3)]
    assert s.plan(3) != s.plan(0)


def test_seeded(views):
    a, b, c = sampler(views, 0.5, seed=1), sampler(views, 0.5, seed=1), sampler(views, 0.5, seed=2)
    assert a.plan(0) == b.plan(0) and a.plan(5) == b.plan(5)
    assert a.plan(0) != c.plan(0)


@pytest.mark.parametrize("batch_size", [8, 10])  # 144 (even) and 115 (odd) batches per epoch
def test_two_ranks_get_disjoint_batches_covering_the_plan(views, batch_size):
    plans = []
    for rank in range(2):
        s = sampler(views, 0.5, batch_size=batch_size, seed=4)  # each process builds its own sampler
        s.set_epoch(2)
        shard = BatchSamplerShard(s, num_processes=2, process_index=rank, even_batches=False)
        plans.append([tuple(b) for b in shard])
        assert len(plans[-1]) == len(shard)
    full = [b.indices for b in sampler(views, 0.5, batch_size=batch_size, seed=4).plan(2)]
    assert plans[0] == full[0::2] and plans[1] == full[1::2]
    assert sorted(plans[0] + plans[1]) == sorted(full)
    assert not set(plans[0]) & set(plans[1])


def test_language_subset(views):
    s = sampler(views, 0.5, languages=["ar", "en"])
    for b in s.plan(0):
        assert set(b.query_langs) | set(b.passage_langs) <= {"ar", "en"}


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_out_of_range(views, alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        sampler(views, alpha)


def test_one_language_source_with_cross_batches(examples):
    en = build_views(filter_languages(examples, ["en"]))
    with pytest.raises(ValueError, match="at least 2 languages"):
        sampler(en, 0.5)
    assert all(b.kind == "mono" for b in sampler(en, 1.0).plan(0))


def test_empty_source():
    with pytest.raises(ValueError, match="no examples"):
        build_views([])


def test_oversized_batch(views):
    with pytest.raises(ValueError, match=r"batch_size 600 .* zh \(504\)"):
        sampler(views, 0.5, batch_size=600)
    with pytest.raises(ValueError, match="1148 examples with >= 2"):
        sampler(views, 0.0, batch_size=1200)


def test_validation_batches_and_factory(views):
    vb = validation_batches(views, 32, alpha=0.5, seed=0)
    assert len({len(b) for b in vb}) == 1
    for b in vb:
        idx = np.array(b)
        assert len(set(views.pid[idx])) == len(b) == len(set(views.positive_id[idx]))
    assert vb == validation_batches(views, 32, alpha=0.5, seed=0)
    eval_ds = views.dataset.select(range(10))
    factory = SamplerFactory(views.dataset, functools.partial(HybridBatchSampler, views=views, alpha=0.5),
                             eval_ds, [[0, 1], [2, 3]])
    kw = dict(batch_size=8, drop_last=False, valid_label_columns=None, generator=None, seed=0)
    assert isinstance(factory(views.dataset, **kw), HybridBatchSampler)
    fixed = factory(eval_ds, **kw)
    assert isinstance(fixed, FixedBatchSampler) and list(fixed) == [[0, 1], [2, 3]]
