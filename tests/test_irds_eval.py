"""Any ir_datasets id evaluates monolingually (nDCG@10, R@100) through the same entry point."""

from __future__ import annotations

import ir_datasets
import pytest
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, GenericDoc, GenericQuery, TrecQrel

from datasets_ext.lareqa import _ListIter
from pyterrier_hybrid.cli import main as cli_main

DOCS = [
    GenericDoc("d1", "Nairobi ni mji mkuu wa Kenya."),
    GenericDoc("d2", "Dar es Salaam ni mji mkubwa zaidi wa Tanzania."),
    GenericDoc("d3", "Mlima Kilimanjaro ndio mlima mrefu zaidi barani Afrika."),
    GenericDoc("d4", "Simba ni mnyama anayeishi katika savana."),
]
QUERIES = [GenericQuery("q1", "Mji mkuu wa Kenya ni upi?"), GenericQuery("q2", "Mlima mrefu zaidi Afrika ni upi?")]
QRELS = [TrecQrel("q1", "d1", 1, "0"), TrecQrel("q2", "d3", 1, "0")]


class _Docs(BaseDocs):
    def docs_iter(self):
        return _ListIter(DOCS)

    def docs_count(self):
        return len(DOCS)

    def docs_cls(self):
        return GenericDoc


class _Queries(BaseQueries):
    def queries_iter(self):
        return iter(QUERIES)

    def queries_cls(self):
        return GenericQuery


class _Qrels(BaseQrels):
    def qrels_iter(self):
        return iter(QRELS)

    def qrels_defs(self):
        return {1: "relevant"}


@pytest.fixture(scope="module")
def tiny_swahili():
    name = "test-miracl-like/sw/dev"
    if name not in ir_datasets.registry._registered:
        ir_datasets.registry.register(name, Dataset(_Docs(), _Queries(), _Qrels()))
    return name


def test_generic_dataset_monolingual(tiny_swahili, default_model_dir, capsys):
    assert cli_main(["evaluate", "--benchmark", f"irds:{tiny_swahili}", "--model", str(default_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "R@100" in out
    from pyterrier_hybrid import evaluate_dataset

    res = evaluate_dataset(str(default_model_dir), tiny_swahili, verbose=False)
    assert res.loc[0, "R@100"] == 1.0  # 4 docs: every relevant doc is within 100
    assert res.loc[0, "nDCG@10"] > 0.9  # both questions name their answer's key words
