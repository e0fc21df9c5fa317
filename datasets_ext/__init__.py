"""XQuAD-R and MLQA-R (LAReQA) as ir_datasets entries.

``import datasets_ext`` registers, for B in ``xquad-r`` and ``mlqa-r``: ``B`` (the
multilingual pool), ``B/{q}-{d}`` for every ordered language pair and ``B/{q}-multi``.
Registration reads no file; data are fetched (md5-verified) on first use, from
``$LAREQA_DATA_DIR`` when set, else from the pinned upstream URLs. No torch import here.
"""

from ._registry import register_benchmark
from .lareqa import (
    DATA_DIR_ENV,
    Benchmark,
    LareqaDataError,
    LareqaDoc,
    UnknownDatasetError,
    doc_id,
    lang_of,
    load_lang,
    parallel_id,
    query_id,
)
from .mlqa_r import MLQA_R
from .xquad_r import XQUAD_R

#: The LAReQA benchmarks by name.
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (XQUAD_R, MLQA_R)}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (``xquad-r`` or ``mlqa-r``)."""
    if name not in BENCHMARKS:
        raise UnknownDatasetError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def corpus_id(dataset_id: str) -> str:
    """The canonical name of a dataset id's corpus: ``xquad-r/ar-en`` -> ``xquad-r/en``.

    Ids sharing a corpus (every ``B/{q}-{d}`` for one ``d``; ``B`` and all ``B/{q}-multi``)
    map to one name, so cached vectors are shared. Other ids are returned unchanged.
    """
    name = dataset_id.removeprefix("irds:")
    bench, _, pair = name.partition("/")
    if bench in BENCHMARKS and pair.count("-") == 1:
        q, d = pair.split("-")
        if q in BENCHMARKS[bench].languages:
            if d == "multi":
                return bench
            if d in BENCHMARKS[bench].languages:
                return f"{bench}/{d}"
    return name


for _bench in BENCHMARKS.values():
    register_benchmark(_bench)

__all__ = [
    "BENCHMARKS",
    "DATA_DIR_ENV",
    "MLQA_R",
    "XQUAD_R",
    "Benchmark",
    "LareqaDataError",
    "LareqaDoc",
    "UnknownDatasetError",
    "corpus_id",
    "doc_id",
    "get_benchmark",
    "lang_of",
    "load_lang",
    "parallel_id",
    "query_id",
]
