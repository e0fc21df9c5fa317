"""Training losses beyond the paper's InfoNCE, on sentence-transformers' MultipleNegativesRankingLoss
conventions: cosine similarity, ``scale = 1 / temperature``, the anchors in the first column and
the candidates after it, every in-batch candidate a negative of every other row, mean over rows.

:class:`MultiPositiveRankingLoss` reads the columns of :func:`pyterrier_hybrid.train_views.build_views`
in order: ``anchor``, the ``num_positives`` positive columns (``positive``, ``positive_2..m``), the
``num_negatives`` negative columns, then ``translation`` when ``translation_weight > 0``. The
``label`` column, a ``(batch, 2)`` tensor, is the mask: row i's positive columns ``0..label[i, 0]-1``
are real, the others are padding (a copy of its positive); ``label[i, 1]`` is 1 when row i's
translation is real. A padded column is no candidate of any row (it would repeat a positive).

Retrieval (multi-positive InfoNCE): with ``s(i, c)`` the scaled cosine of anchor i and candidate
column c, and ``P_i`` row i's real positive columns, row i's loss is the mean over ``t`` in ``P_i`` of
``-s(i, t) + logsumexp({s(i, t)} + {s(i, c): c a real candidate not in P_i})``: each positive
competes with every non-positive, never with the row's other positives. With one positive per row
this is MultipleNegativesRankingLoss exactly.

Translation ranking (``translation_weight`` w > 0): each row's positive (its answer sentence) against
the batch's ``translation`` column (the same answers in another language), both directions
(positive -> translation, translation -> positive, averaged), rows without a real translation left
out; the loss is ``retrieval + w * translation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.util import cos_sim
from torch import Tensor, nn

__all__ = ["MultiPositiveRankingLoss", "multi_positive_infonce", "translation_ranking"]


def multi_positive_infonce(anchors: Tensor, candidates: list[Tensor], num_positives: int, scale: float,
                           n_real: Tensor | None = None) -> Tensor:
    """The retrieval loss: ``anchors`` (n, d), ``candidates`` the positive then negative columns (each
    (n, d)), the first ``num_positives`` of them positives; ``n_real`` (n,) real positives per row
    (default: all)."""
    n, m = anchors.size(0), num_positives
    scores = cos_sim(anchors, torch.cat(candidates, dim=0)) * scale  # (n, n * columns)
    rows = torch.arange(n, device=anchors.device)
    if n_real is None:
        n_real = torch.full((n,), m, device=anchors.device, dtype=torch.long)
    n_real = n_real.to(anchors.device).long().clamp(1, m)
    real = torch.arange(m, device=anchors.device)[:, None] < n_real[None, :]  # (m, n): column t of row i real
    pos_cols = torch.arange(m, device=anchors.device)[:, None] * n + rows[None, :]  # (m, n)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[:, pos_cols[~real]] = True  # padding: no candidate of anyone
    mask[rows[None, :].expand(m, n), pos_cols] = True  # the row's own positives: added back one at a time
    # finite, not -inf: a row left without candidates (n 1, no negatives) gets 0, not a NaN gradient
    log_rest = torch.logsumexp(scores.masked_fill(mask, torch.finfo(scores.dtype).min / 2), dim=1)  # (n,)
    pos = scores[rows[None, :].expand(m, n), pos_cols]  # (m, n)
    per = torch.logaddexp(log_rest[None, :], pos) - pos  # (m, n)
    per = torch.where(real, per, torch.zeros_like(per))
    return (per.sum(0) / real.sum(0)).mean()


def translation_ranking(sources: Tensor, translations: Tensor, scale: float, real: Tensor | None = None) -> Tensor:
    """Each source sentence against the batch's translations and back (mean of the two InfoNCE
    directions); ``real`` (n,) bool leaves rows without a real translation out (as rows and candidates)."""
    n = sources.size(0)
    if real is None:
        real = torch.ones(n, dtype=torch.bool, device=sources.device)
    real = real.to(sources.device).bool()
    if int(real.sum()) == 0:
        return sources.sum() * 0
    scores = cos_sim(sources[real], translations[real]) * scale
    target = torch.arange(scores.size(0), device=sources.device)
    return (nn.functional.cross_entropy(scores, target) + nn.functional.cross_entropy(scores.T, target)) / 2


class MultiPositiveRankingLoss(nn.Module):
    """Multi-positive InfoNCE (+ ``translation_weight`` x translation ranking) over the columns of
    :func:`~pyterrier_hybrid.train_views.build_views` (module docstring)."""

    def __init__(self, model: Any, *, scale: float = 20.0, num_positives: int = 1, num_negatives: int = 0,
                 translation_weight: float = 0.0) -> None:
        super().__init__()
        if not scale > 0 or num_positives < 1 or num_negatives < 0 or translation_weight < 0:
            raise ValueError(f"MultiPositiveRankingLoss needs scale > 0, num_positives >= 1, num_negatives >= 0 and "
                             f"translation_weight >= 0; got {scale}, {num_positives}, {num_negatives}, "
                             f"{translation_weight}")
        self.model, self.scale = model, float(scale)
        self.num_positives, self.num_negatives = num_positives, num_negatives
        self.translation_weight = float(translation_weight)

    @property
    def columns(self) -> int:
        """Text columns the loss reads (anchor included)."""
        return 1 + self.num_positives + self.num_negatives + (1 if self.translation_weight > 0 else 0)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from the columns' embeddings; ``labels`` the ``(batch, 2)`` mask (or ``None``)."""
        if len(embeddings) != self.columns:
            raise ValueError(f"expected {self.columns} columns (anchor, {self.num_positives} positives, "
                             f"{self.num_negatives} negatives{', translation' if self.translation_weight else ''}), "
                             f"got {len(embeddings)}")
        has_mask = labels is not None and labels.dim() == 2
        n_real = labels[:, 0] if has_mask else None
        cands = embeddings[1:1 + self.num_positives + self.num_negatives]
        loss = multi_positive_infonce(embeddings[0], cands, self.num_positives, self.scale, n_real)
        if self.translation_weight > 0:
            real = labels[:, 1] > 0 if has_mask else None
            loss = loss + self.translation_weight * translation_ranking(embeddings[1], embeddings[-1], self.scale,
                                                                        real)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "num_positives": self.num_positives, "num_negatives": self.num_negatives,
                "translation_weight": self.translation_weight}
