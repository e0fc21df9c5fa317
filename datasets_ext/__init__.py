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
    "doc_id",
    "get_benchmark",
    "lang_of",
    "load_lang",
    "parallel_id",
    "query_id",
]
