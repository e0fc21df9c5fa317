"""Dense vector index (a PyTerrier artifact) and its retriever (a PyTerrier transformer).

Modules: :mod:`.storage` (on-disk format, pyterrier-dr's FlexIndex layout; :class:`DenseIndex`,
:class:`DenseIndexer`), :mod:`.writing` (the payload and its checks), :mod:`.exact` (exact search
and the sort keys of the tie rule), :mod:`.ann` (faiss HNSW / IVF build, cache and search),
:mod:`.retriever` (:class:`DenseRetriever`, dispatching to a backend).
"""

from .retriever import DEFAULT_NUM_RESULTS, FULL_RANKING_MAX_DOCS, DenseRetriever
from .storage import DenseIndex, DenseIndexer

__all__ = ["DEFAULT_NUM_RESULTS", "FULL_RANKING_MAX_DOCS", "DenseIndex", "DenseIndexer", "DenseRetriever"]
