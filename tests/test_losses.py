"""pyterrier_hybrid.losses on real tensors: the real offline model's embeddings of real MLQA-R rows.
With one positive the multi-positive loss is MultipleNegativesRankingLoss; with several it matches a
loop over the definition; the translation-ranking term matches two cross-entropies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyterrier_hybrid.losses import MultiPositiveRankingLoss, multi_positive_infonce, translation_ranking
from pyterrier_hybrid.train_data import from_lareqa
from pyterrier_hybrid.train_views import build_views


@pytest.fixture(scope="module")
def embedded(data_dir, default_model_dir):
    """12 real views (3 positive columns, 2 negatives, a translation) embedded by the real model."""
    from pyterrier_hybrid import load_model

    examples = from_lareqa("mlqa-r")
    examples = [examples[i] for i in sorted(np.random.default_rng(0).choice(len(examples), 64, replace=False))]
    views = build_views(examples, num_negatives=2, seed=0, num_positives=3, translation=True)
    two = [i for i, ex in enumerate(examples) if len(ex.langs) == 2][:6]
    more = [i for i, ex in enumerate(examples) if len(ex.langs) > 2][:6]
    picked = [views.row[(i, examples[i].languages[1], examples[i].languages[0])] for i in sorted(two + more)]
    rows = views.dataset.select(picked)  # 12 cross-lingual views of distinct questions in 2, 3 or 4 languages
    model = load_model(default_model_dir)
    cols = ["anchor", "positive", "positive_2", "positive_3", "negative_1", "negative_2", "translation"]
    with torch.no_grad():
        embs = [model.encode(rows[c], convert_to_tensor=True, prompt="query: " if c == "anchor" else "passage: ")
                for c in cols]
    return model, embs, torch.tensor(rows["label"]), rows


def test_one_positive_is_multiple_negatives_ranking_loss(embedded):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model, embs, labels, _ = embedded
    cols = [embs[0], embs[1], embs[4], embs[5]]  # anchor, positive, two negatives
    for scale in (20.0, 1 / 0.03):
        ref = MultipleNegativesRankingLoss(model, scale=scale).compute_loss_from_embeddings(cols, None)
        ours = MultiPositiveRankingLoss(model, scale=scale, num_positives=1, num_negatives=2)
        assert abs(ours.compute_loss_from_embeddings(cols, None).item() - ref.item()) < 1e-6
        one = torch.ones(len(labels), 2, dtype=torch.long)  # a mask saying "one real positive" changes nothing
        assert abs(ours.compute_loss_from_embeddings(cols, one).item() - ref.item()) < 1e-6
    assert ref.item() > 0.01  # a real loss, not a degenerate 0
    # and the gradients agree
    leaves = [c.clone().requires_grad_(True) for c in cols]
    MultipleNegativesRankingLoss(model, scale=20.0).compute_loss_from_embeddings(leaves, None).backward()
    ref_grads = [x.grad.clone() for x in leaves]
    leaves = [c.clone().requires_grad_(True) for c in cols]
    MultiPositiveRankingLoss(model, scale=20.0, num_negatives=2).compute_loss_from_embeddings(leaves, None).backward()
    assert all(torch.allclose(a, b.grad, atol=1e-6) for a, b in zip(ref_grads, leaves, strict=True))


def _loop(anchors, cands, m, scale, n_real):
    """The definition, one row and one positive at a time."""
    n = anchors.size(0)
    a = torch.nn.functional.normalize(anchors, dim=-1)
    c = torch.nn.functional.normalize(torch.cat(cands), dim=-1)
    s = (a @ c.T * scale).double().tolist()
    n_real = [int(x) for x in n_real]
    padded = {t * n + j for j in range(n) for t in range(m) if t >= n_real[j]}
    total = 0.0
    for i in range(n):
        own = [t * n + i for t in range(int(n_real[i]))]
        rest = [col for col in range(c.size(0)) if col not in padded and col not in own]
        per = [math.log(math.exp(s[i][p]) + sum(math.exp(s[i][r]) for r in rest)) - s[i][p] for p in own]
        total += sum(per) / len(per)
    return total / n


def test_multi_positive_matches_its_definition_and_masks_padding(embedded):
    model, embs, labels, rows = embedded
    cands = [embs[1], embs[2], embs[3], embs[4], embs[5]]
    n_real = labels[:, 0]
    assert set(n_real.tolist()) == {2, 3}  # 2 languages: one padded column
    got = multi_positive_infonce(embs[0], cands, 3, 20.0, n_real).item()
    assert got == pytest.approx(_loop(embs[0], cands, 3, 20.0, n_real), abs=1e-5)
    # a padded column is the row's positive copied: masked, so its content does not matter
    pad = n_real < 3
    changed = [c.clone() for c in cands]
    changed[2][pad] = torch.randn_like(changed[2][pad])
    assert multi_positive_infonce(embs[0], changed, 3, 20.0, n_real).item() == pytest.approx(got, abs=1e-6)
    # extra positives are parallel answers: treating them as positives lowers the loss against
    # treating only the first as positive (the others then count as negatives)
    assert got < multi_positive_infonce(embs[0], cands, 3, 20.0, torch.ones_like(n_real)).item()
    loss = MultiPositiveRankingLoss(model, scale=20.0, num_positives=3, num_negatives=2)
    assert loss.compute_loss_from_embeddings(embs[:6], labels).item() == pytest.approx(got, abs=1e-6)
    with pytest.raises(ValueError, match="expected 6 columns"):
        loss.compute_loss_from_embeddings(embs[:5], labels)


def test_translation_ranking_and_the_weighted_sum(embedded):
    model, embs, labels, _ = embedded
    src, tr = embs[1], embs[6]
    s = torch.nn.functional.normalize(src, dim=-1) @ torch.nn.functional.normalize(tr, dim=-1).T * 20.0
    target = torch.arange(len(src))
    expected = (torch.nn.functional.cross_entropy(s, target) + torch.nn.functional.cross_entropy(s.T, target)) / 2
    assert translation_ranking(src, tr, 20.0).item() == pytest.approx(expected.item(), abs=1e-6)
    real = torch.ones(len(src), dtype=torch.bool)
    real[3] = False  # a row without a real translation leaves both its row and its column out
    keep = real.nonzero().squeeze(1)
    sub = s[keep][:, keep]
    t2 = torch.arange(len(keep))
    expected2 = (torch.nn.functional.cross_entropy(sub, t2) + torch.nn.functional.cross_entropy(sub.T, t2)) / 2
    assert translation_ranking(src, tr, 20.0, real).item() == pytest.approx(expected2.item(), abs=1e-6)
    # the multilingual model already aligns translations: the loss is far below chance (log n)
    assert expected.item() < 0.5 * math.log(len(src))
    full = MultiPositiveRankingLoss(model, scale=20.0, num_positives=3, num_negatives=2, translation_weight=0.5)
    retrieval = multi_positive_infonce(embs[0], embs[1:6], 3, 20.0, labels[:, 0])
    both = retrieval + 0.5 * translation_ranking(src, tr, 20.0, labels[:, 1] > 0)
    assert full.compute_loss_from_embeddings(embs, labels).item() == pytest.approx(both.item(), abs=1e-6)
    with pytest.raises(ValueError, match="translation_weight >= 0"):
        MultiPositiveRankingLoss(model, translation_weight=-1)
