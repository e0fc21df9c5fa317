"""Rank kernels: relevant ranks with pytrec_eval's tie order, and the measures from them."""

from __future__ import annotations

import numpy as np
import pytest

from pyterrier_hybrid.ranks import rank_metrics, relevant_ranks


def test_ties_are_ordered_by_docno_descending():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]])
    ranks = relevant_ranks(scores, ["a", "b", "c", "d"], [np.array([0, 2])])
    assert ranks[0].tolist() == [3, 2]  # "c" before "a" at equal score
    with pytest.raises(ValueError, match="rel_cols has 2 entries"):
        relevant_ranks(scores, ["a", "b", "c", "d"], [np.array([0]), np.array([1])])


def test_measures_from_ranks():
    m = rank_metrics([np.array([1, 3]), np.array([2]), np.array([], dtype=np.int64)], [2, 2, 1],
                     ["AP", "R@1", "RR", "RankDistance"])
    np.testing.assert_allclose(m["AP"], [(1 + 2 / 3) / 2, 0.5 / 2, 0.0])
    np.testing.assert_allclose(m["R@1"], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(m["RR"], [1.0, 0.5, 0.0])
    assert m["RankDistance"][0] == 2 and np.isnan(m["RankDistance"][1:]).all()
