"""Exact search: blocked inner products over all documents, top-k by int64 sort keys.

Scores are inner products computed in float64 and rounded to float32, so a document's score does not
depend on how queries and documents are batched. Results follow the tie rule of
:mod:`pyterrier_hybrid.ranks` (score descending, then docno descending: trec_eval's order), so a run
evaluates identically whatever order its ties are listed in. Score and tie-break are packed into one
int64 key per (query, document) (:func:`sort_keys`): ascending keys are the ranking.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

KEY_BUDGET = 1 << 24
"""int64 sort keys held per query batch (128 MiB)."""


class DocnoOrder(NamedTuple):
    """The tie-break order of an index's documents: docno descending."""

    rank: np.ndarray  # rank of each docid in docno-descending order
    by_rank: np.ndarray  # docids in that order


def docno_order(docnos: np.ndarray) -> DocnoOrder:
    """Docno-descending ranks of ``docnos`` (unique str) and the docids in that order."""
    by_rank = np.argsort(docnos)[::-1].astype(np.int64)
    rank = np.empty_like(by_rank)
    rank[by_rank] = np.arange(len(by_rank))
    return DocnoOrder(rank, by_rank)


def sort_keys(scores: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """int64 keys whose ascending order is score descending, then docno descending.

    High 32 bits: the float32 score mapped to an order-preserving int32, negated; low 32 bits: the
    document's rank in docno-descending order. Keys are decoded losslessly by :func:`decode_keys`.
    """
    bits = (scores + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into +0.0
    ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return ((~ascending).astype(np.int64) << 32) | ranks


def decode_keys(keys: np.ndarray, by_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(docids, float32 scores) of keys made by :func:`sort_keys`."""
    ascending = (~(keys >> 32)).astype(np.int32)
    scores = (ascending ^ ((ascending >> 31) & 0x7FFFFFFF)).view(np.float32)
    return by_rank[keys & 0xFFFFFFFF], scores


def top_keys(queries: np.ndarray, vectors: np.ndarray, ranks: np.ndarray, k: int, block: int) -> np.ndarray:
    """Sorted keys of the top k documents per query, scoring ``block`` documents at a time."""
    queries64 = queries.astype(np.float64)
    kept = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(vectors), block):
        docs = vectors[start : start + block].astype(np.float64)
        scores = (queries64 @ docs.T).astype(np.float32)
        kept = np.concatenate([kept, sort_keys(scores, ranks[start : start + block])], axis=1)
        if kept.shape[1] > k:
            kept = np.partition(kept, k - 1, axis=1)[:, :k]
    return np.sort(kept, axis=1)


def search(
    queries: np.ndarray, vectors: np.ndarray, order: DocnoOrder, k: int, block: int, bar: Any
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Top-k (docids, scores) per query, in ranking order; ``bar`` (tqdm) counts queries."""
    step = max(1, KEY_BUDGET // (k + block))
    docids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for start in range(0, len(queries), step):
        keys = top_keys(queries[start : start + step], vectors, order.rank, k, block)
        batch_ids, batch_scores = decode_keys(keys, order.by_rank)
        docids.extend(batch_ids)
        scores.extend(batch_scores)
        bar.update(len(keys))
    return docids, scores
