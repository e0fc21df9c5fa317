"""Objectives beyond the paper (issue 26 item 2): the data plan on the real MLQA-R files (where the
hard negatives come from, the parallel positive and translation columns, the language weights'
realised mix) and, with a tiny random model, the training plumbing of each option (2 steps, exact
resume, train_config.json, the model card, TrainConfig.matches, older configs)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from datasets_ext import get_benchmark, load_lang
from pyterrier_hybrid.sampler import HybridBatchSampler, build_views
from pyterrier_hybrid.train_config import TrainConfig
from pyterrier_hybrid.train_data import from_lareqa
from pyterrier_hybrid.training import train


@pytest.fixture(scope="module")
def examples(data_dir):
    return from_lareqa("mlqa-r")


@pytest.fixture(scope="module")
def raw(data_dir):
    """Per language, straight from the MLQA-R files: paragraph -> its sentences' texts, the answer
    sentence's text of each question (by parallel id)."""
    bench = get_benchmark("mlqa-r")
    out = {}
    for lang in bench.languages:
        data = load_lang(bench, lang)
        text = {d.doc_id: d.text for d in data.docs}
        paragraphs: dict[str, set[str]] = {}
        for d in data.docs:
            paragraphs.setdefault(d.doc_id.rsplit("_", 1)[0], set()).add(d.text)
        out[lang] = (paragraphs, {pid: doc for pid, doc in data.answer.items()}, text)
    return out


def _paragraph(raw, lang, example):
    paragraphs, answer, text = raw[lang]
    doc = answer[example.pid]
    return paragraphs[doc.rsplit("_", 1)[0]], text[doc]


@pytest.mark.parametrize("rule", ["passage", "query", "other", "mix"])
def test_hard_negatives_come_from_the_answers_paragraph_in_the_intended_language(examples, raw, rule):
    views = build_views(examples, num_negatives=2, seed=0, negative_language=rule)
    from_paragraph, chosen = 0, {}
    for r in range(0, len(views), 3):  # every third view: ~3000 rows
        i, q, p = int(views.example[r]), views.qlang[r], views.plang[r]
        ex = views.examples[i]
        langs = views.negative_langs[r]
        assert len(langs) == 2 and all(lang in ex.langs for lang in langs)
        if rule == "passage":
            assert langs == (p, p)
        elif rule == "query":
            assert langs == (q, q)
        elif rule == "other":
            rest = set(ex.langs) - {q, p}
            assert langs[0] == langs[1] and (langs[0] in rest if rest else langs[0] == (q if q != p else p))
        for k, lang in enumerate(langs):
            chosen[lang == p] = chosen.get(lang == p, 0) + 1
            neg = views.dataset[r][f"negative_{k + 1}"]
            sentences, answer = _paragraph(raw, lang, ex)
            if len(ex.langs[lang].negatives) > k:  # the paragraph has a k-th other sentence: it is one of them
                assert neg in sentences and neg != answer
                from_paragraph += 1
            else:  # topped up by another question's answer in that language (as before)
                assert neg != answer
    assert from_paragraph > 0.8 * 2 * len(range(0, len(views), 3))  # 87 % (passage): paragraphs are short
    if rule == "mix":  # each negative's language drawn uniformly among the question's: the passage's 1 / n of the time
        rows = range(0, len(views), 3)
        expected = np.mean([1 / len(views.examples[int(views.example[r])].langs) for r in rows])
        assert chosen[True] / (chosen[True] + chosen[False]) == pytest.approx(expected, abs=0.02)
    if rule in ("query", "other"):
        assert chosen.get(False, 0) > 0.5 * sum(chosen.values())  # mostly another language than the passage's
    again = build_views(examples, num_negatives=2, seed=0, negative_language=rule)
    assert again.negative_langs == views.negative_langs and again.dataset[:50] == views.dataset[:50]
    if rule in ("other", "mix"):
        assert build_views(examples, num_negatives=2, seed=1, negative_language=rule).negative_langs != \
            views.negative_langs


def test_default_views_are_the_papers(examples):
    """The default rows: passage-language negatives, one positive, no translation and no label column."""
    views = build_views(examples, num_negatives=1, seed=0)
    assert views.dataset.column_names == ["anchor", "positive", "negative_1"]
    assert all(nl == (p,) for nl, p in zip(views.negative_langs, views.plang, strict=True))
    explicit = build_views(examples, num_negatives=1, seed=0, negative_language="passage")
    assert explicit.dataset[:] == views.dataset[:]
    with pytest.raises(ValueError, match="unknown negative_language 'paragraph'; valid: passage, query, other, mix"):
        build_views(examples, negative_language="paragraph")


def test_multi_positive_and_translation_columns_hold_parallel_answers(examples, raw):
    views = build_views(examples, num_negatives=1, seed=0, num_positives=4, translation=True)
    assert views.dataset.column_names == ["anchor", "positive", "positive_2", "positive_3", "positive_4",
                                          "negative_1", "translation", "label"]
    sizes = {}
    for r in range(0, len(views), 5):
        row, ex, p = views.dataset[r], views.examples[int(views.example[r])], views.plang[r]
        langs = views.positive_langs[r]
        assert langs[0] == p and len(set(langs)) == len(langs) == min(4, len(ex.langs))
        assert row["label"] == [len(langs), 1]
        sizes[len(langs)] = sizes.get(len(langs), 0) + 1
        for t in range(4):
            col = "positive" if t == 0 else f"positive_{t + 1}"
            lang = langs[t] if t < len(langs) else p  # padding repeats the positive (masked by the loss)
            assert row[col] == raw[lang][2][raw[lang][1][ex.pid]]  # the question's answer sentence in that language
        tr = views.translation_langs[r]
        assert tr in ex.langs and tr != p and row["translation"] == raw[tr][2][raw[tr][1][ex.pid]]
    assert set(sizes) == {2, 3, 4}  # MLQA-R questions come in 2 to 4 languages
    assert build_views(examples, num_negatives=1, seed=0, num_positives=4).positive_langs == views.positive_langs


def test_batches_never_hold_one_answer_twice_with_parallel_answer_columns(examples):
    """Questions can share an answer sentence in a language (MLQA-R: 16 of 1148); with extra positive
    or translation columns a batch keeps every answer id of its questions' languages distinct."""
    from collections import Counter

    count = Counter(item.positive_id for ex in examples for item in ex.langs.values())
    sharing = [ex for ex in examples if any(count[item.positive_id] > 1 for item in ex.langs.values())]
    assert len(sharing) == 16

    def clashes(views):
        s = HybridBatchSampler(views.dataset, 4, seed=0, views=views, alpha=0.0)
        n = 0
        for b in (b for e in range(5) for b in s.plan(e)):
            ids = [item.positive_id for r in b.indices for item in views.examples[int(views.example[r])].langs.values()]
            n += len(ids) != len(set(ids))
        return n

    assert clashes(build_views(sharing, num_negatives=1, seed=0)) > 0  # the paper's views: only positives distinct
    assert clashes(build_views(sharing, num_negatives=1, seed=0, num_positives=2)) == 0
    assert clashes(build_views(sharing, num_negatives=1, seed=0, translation=True)) == 0


EXPECTED_MONO = {"ar": 16, "hi": 9, "de": 5, "en": 5, "es": 5, "vi": 5, "zh": 5}


def test_language_weights_change_the_mix_as_asked(examples):
    views = build_views(examples, num_negatives=1, seed=0)
    weights = {"ar": 3.5, "hi": 2.0}

    def make(seed=0, mix="exact", w=weights):
        return HybridBatchSampler(views.dataset, 8, seed=seed, views=views, alpha=0.5, mix=mix, budget=100,
                                  language_weights=w)

    # 50 mono batches, weights 3.5 + 2 + 5 x 1 = 10.5: ar 16.67, hi 9.52, the others 4.76 each; largest
    # remainders give the 5 left over to the five others (.76 > .67 > .52)
    for seed in (0, 1, 2):
        counts = make(seed).counts(100)
        assert counts["mono"] == 50 and counts["mono_languages"] == EXPECTED_MONO
    assert make(0).plan(0) == make(0).plan(0) and make(0).plan(0) != make(1).plan(0)
    uniform = make(w=None).counts(100)["mono_languages"]
    assert sorted(uniform.values()) == [7, 7, 7, 7, 7, 7, 8]  # the balanced mix of before
    # cross pairs: each side drawn with weighted sampling among the question's languages
    def side_share(s, lang):
        rows = [(q, p) for e in range(3) for b in s.plan(e) if b.kind == "cross"
                for q, p in zip(b.query_langs, b.passage_langs, strict=True)]
        return sum((q == lang) + (p == lang) for q, p in rows) / (2 * len(rows))
    weighted, plain = make(mix="random"), make(mix="random", w=None)
    assert side_share(weighted, "ar") > side_share(plain, "ar") + 0.05
    assert side_share(weighted, "en") < side_share(plain, "en")
    assert make(mix="random").plan(2) == weighted.plan(2)  # reproducible from the seed
    sides = make().counts(100)["cross_sides"]  # recorded in train_config.json's realised mix
    assert sum(sides.values()) == 2 * 8 * 50 and "cross_sides" not in make(w=None).counts(100)
    assert sides["ar"] / sum(sides.values()) > side_share(plain, "ar") + 0.05  # en is in every question, ar in fewer
    mono = [b.query_langs[0] for e in range(3) for b in weighted.plan(e) if b.kind == "mono"]
    assert mono.count("ar") > 2 * mono.count("en")  # random mix: drawn with probability 3.5 / 10.5 vs 1 / 10.5
    with pytest.raises(ValueError, match="language_weights names th, not a training language; training languages"):
        make(w={"th": 2})


@pytest.fixture(scope="module")
def subset(examples):
    return [examples[i] for i in sorted(np.random.default_rng(0).choice(len(examples), 64, replace=False))]


OPTIONS = [  # option, value, card text, columns the multi-positive loss sees (None: plain InfoNCE)
    ("negative_language", "other", "hard negatives from the answer's paragraph (negative_language other)", None),
    ("num_positives", 3, "multi-positive InfoNCE (the answer in up to 3 languages)", 5),
    ("translation_weight", 0.5, "translation-ranking loss weight 0.5", 4),
    ("language_weights", {"ar": 3.0}, "language weights ar 3", None),
]


@pytest.mark.parametrize(("name", "value", "card", "columns"), OPTIONS, ids=[o[0] for o in OPTIONS])
def test_each_objective_trains_resumes_and_is_recorded(tiny_model_dir, subset, tmp_path, monkeypatch, name, value,
                                                       card, columns):
    from pyterrier_hybrid.losses import MultiPositiveRankingLoss

    seen = []
    original = MultiPositiveRankingLoss.compute_loss_from_embeddings

    def spy(self, embeddings, labels=None):
        seen.append((len(embeddings), tuple(labels.shape)))
        return original(self, embeddings, labels)

    monkeypatch.setattr(MultiPositiveRankingLoss, "compute_loss_from_embeddings", spy)
    out = tmp_path / "run"
    kw = dict(sampling="hybrid", alpha=0.5, batch_size=8, steps=2, save_steps=1, eval_fraction=0.1, out=out, seed=1,
              max_query_length=32, max_passage_length=32, verbose=False, keep_checkpoints=True, keep="last")
    first = train(str(tiny_model_dir), subset, **{name: value}, **kw)
    ref = [json.loads(line) for line in first.log_path.read_text().splitlines()]
    assert [line["step"] for line in ref if "loss" in line] == [1, 2]
    assert sum("eval_loss" in line for line in ref) == 2  # the validation views carry the same columns
    # the loss gets every column and the (batch, 2) mask: anchor, positives, 1 negative (, translation)
    assert set(seen) == ({(columns, (8, 2)), (columns, (6, 2))} if columns else set())  # train and validation

    shutil.rmtree(out / "checkpoints" / "checkpoint-2")  # interrupted before step 2's checkpoint
    again = train(str(tiny_model_dir), subset, resume=True, **{name: value}, **kw)
    lines = [json.loads(line) for line in again.log_path.read_text().splitlines()]
    for a, b in zip([x for x in ref if "loss" in x], [x for x in lines if "loss" in x], strict=True):
        assert (a["kind"], a["query_langs"], a["passage_langs"]) == (b["kind"], b["query_langs"], b["passage_langs"])
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)

    record = json.loads((out / "train_config.json").read_text())
    assert record["options"][name] == value
    cfg = TrainConfig.from_json(record["options"])
    assert getattr(cfg, name) == value and not cfg.matches(TrainConfig.make(cfg, **{name: getattr(TrainConfig(), name)}))
    assert card in (out / "model" / "README.md").read_text()
    # resuming with the option changed is refused, naming it
    with pytest.raises(ValueError, match=f"other options \\({name} "):
        train(str(tiny_model_dir), subset, resume=True, **{**kw, "steps": 3})
    # a record from before the option existed loads with today's (the paper's) behaviour
    old = {k: v for k, v in record["options"].items() if k != name}
    assert getattr(TrainConfig.from_json(old), name) == getattr(TrainConfig(), name)
