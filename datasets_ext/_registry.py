"""Registration of a LAReQA benchmark's dataset ids with ir_datasets (lazy: reads no file)."""

from __future__ import annotations

import ir_datasets
from ir_datasets.datasets.base import Dataset

from .lareqa import Benchmark, LareqaDocs, LareqaQrels, LareqaQueries, Selection, UnknownDatasetError

LAREQA_BIBTEX = """@inproceedings{roy-etal-2020-lareqa,
  title = "{LAR}e{QA}: Language-Agnostic Answer Retrieval from a Multilingual Pool",
  author = "Roy, Uma and Constant, Noah and Al-Rfou, Rami and Barua, Aditya and Phillips, Aaron and Yang, Yinfei",
  booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
  year = "2020",
  pages = "5919--5930",
  url = "https://aclanthology.org/2020.emnlp-main.477"
}"""


class Documentation:
    """The ``documentation()`` constituent ir_datasets shows for a dataset id."""

    def __init__(self, **fields: str):
        self._fields = fields

    def documentation(self) -> dict[str, str]:
        return dict(self._fields)


def _register(name: str, sel: Selection, desc: str) -> None:
    bench = sel.bench
    docs = Documentation(
        pretty_name=name,
        desc=f"{desc} {bench.description}",
        bibtex=f"{LAREQA_BIBTEX}\n{bench.bibtex}",
        license=bench.license,
        docs_instructions=f"Downloaded from {bench.url('{lang}')} (md5-verified), or read from "
        f"$LAREQA_DATA_DIR/{bench.name}/{{lang}}.json when that variable is set.",
    )
    ds = Dataset(LareqaDocs(sel), LareqaQueries(sel), LareqaQrels(sel), docs)
    if name not in ir_datasets.registry._registered:
        ir_datasets.registry.register(name, ds)


def _unknown(bench: Benchmark):
    """A pattern initializer: any other ``{bench}/...`` id gets an error listing the valid ones."""

    def initializer(dsid: str, groups) -> None:
        langs = ", ".join(bench.languages)
        raise UnknownDatasetError(
            f"{dsid!r} is not a dataset: valid ids are {bench.name!r}, {bench.name}/{{q}}-{{d}} and "
            f"{bench.name}/{{q}}-multi with q, d in {langs} (e.g. {bench.name}/{bench.languages[0]}-en)"
        )

    return initializer


def register_benchmark(bench: Benchmark) -> None:
    """Register ``B``, ``B/{q}-{d}`` for every ordered language pair and ``B/{q}-multi``."""
    langs = bench.languages
    _register(
        bench.name,
        Selection(bench, langs, langs),
        f"{bench.name}: the multilingual pool (all candidates and all questions of the {len(langs)} languages).",
    )
    for q in langs:
        for d in langs:
            kind = "monolingual" if q == d else "cross-lingual"
            _register(
                f"{bench.name}/{q}-{d}",
                Selection(bench, (q,), (d,)),
                f"{bench.name} {kind} setting: {q} questions against the {d} candidates "
                f"(questions with a relevant {d} candidate).",
            )
        _register(
            f"{bench.name}/{q}-multi",
            Selection(bench, (q,), langs),
            f"{bench.name} multilingual setting: {q} questions against the pool of all languages.",
        )
    ir_datasets.registry.register_pattern(rf"^{bench.name}/.*$", _unknown(bench))
