"""Registration of a LAReQA benchmark's dataset ids with ir_datasets (lazy: reads no file).

Counts come from ``metadata.json`` (package data, ir_datasets' metadata layout) through an
ir_datasets ``MetadataComponent``, as for ir_datasets' own datasets: ``docs_count()``,
``queries_count()`` and ``qrels_count()`` parse nothing. ``python -m datasets_ext._metadata``
recomputes the file from the benchmark files.
"""

from __future__ import annotations

import ir_datasets
from ir_datasets.datasets.base import Dataset
from ir_datasets.util import MetadataComponent, MetadataProvider, PackageDataFile, count_hint

from .lareqa import Benchmark, LareqaDocs, LareqaQrels, LareqaQueries, Selection, UnknownDatasetError

METADATA_FILE = "metadata.json"

#: ir_datasets metadata (counts) of the LAReQA ids; the package data file is read on first use.
METADATA = MetadataProvider(MetadataProvider.json_loader(PackageDataFile(METADATA_FILE, package=__package__)))

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


def dataset_ids(bench: Benchmark) -> dict[str, Selection]:
    """Every dataset id of ``bench`` (``B``, ``B/{q}-{d}``, ``B/{q}-multi``) and what it selects."""
    langs = bench.languages
    ids = {bench.name: Selection(bench, langs, langs)}
    for q in langs:
        for d in langs:
            ids[f"{bench.name}/{q}-{d}"] = Selection(bench, (q,), (d,))
        ids[f"{bench.name}/{q}-multi"] = Selection(bench, (q,), langs)
    return ids


def _description(sel: Selection) -> str:
    bench, langs = sel.bench, sel.bench.languages
    if sel.query_langs == langs:
        return f"{bench.name}: the multilingual pool (all candidates and all questions of the {len(langs)} languages)."
    (q,) = sel.query_langs
    if sel.doc_langs == langs:
        return f"{bench.name} multilingual setting: {q} questions against the pool of all languages."
    (d,) = sel.doc_langs
    kind = "monolingual" if q == d else "cross-lingual"
    return (
        f"{bench.name} {kind} setting: {q} questions against the {d} candidates "
        f"(questions with a relevant {d} candidate)."
    )


def _register(name: str, sel: Selection) -> None:
    bench = sel.bench
    docs = Documentation(
        pretty_name=name,
        desc=f"{_description(sel)} {bench.description}",
        bibtex=f"{LAREQA_BIBTEX}\n{bench.bibtex}",
        license=bench.license,
        docs_instructions=f"Downloaded from {bench.url('{lang}')} (md5-verified), or read from "
        f"$LAREQA_DATA_DIR/{bench.name}/{{lang}}.json when that variable is set.",
    )
    ds = Dataset(
        LareqaDocs(sel, count_hint=count_hint(name, ir_datasets.EntityType.docs, METADATA)),
        LareqaQueries(sel),
        LareqaQrels(sel),
        docs,
    )
    if name not in ir_datasets.registry._registered:
        ir_datasets.registry.register(name, Dataset(MetadataComponent(name, ds, METADATA), ds))


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
    for name, sel in dataset_ids(bench).items():
        _register(name, sel)
    ir_datasets.registry.register_pattern(rf"^{bench.name}/.*$", _unknown(bench))
