"""Monolingual evaluation of a model on any ir_datasets id (e.g. ``miracl/sw/dev``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ir_measures
import pandas as pd
import pyterrier as pt

from .encoders import DenseEncoder

__all__ = ["DEFAULT_IRDS_MEASURES", "check_dataset", "evaluate_dataset"]

DEFAULT_IRDS_MEASURES = ("nDCG@10", "R@100")


def check_dataset(name: str) -> None:
    """Raise a clear error for an id ir_datasets does not know (LAReQA ids list their valid choices)."""
    import ir_datasets

    from datasets_ext import BENCHMARKS
    from datasets_ext.lareqa import UnknownDatasetError

    name = name.removeprefix("irds:")
    try:
        ir_datasets.load(name)
    except UnknownDatasetError:
        raise
    except KeyError as e:
        raise ValueError(f"unknown dataset id {name!r}: neither an ir_datasets id nor a LAReQA one "
                         f"({', '.join(BENCHMARKS)}, B/q-d, B/q-multi; `pyterrier-hybrid datasets` lists them)") from e


def evaluate_dataset(
    model: Any,
    dataset: str,
    *,
    measures: Sequence[str] = DEFAULT_IRDS_MEASURES,
    num_results: int = 1000,
    backend: str | None = None,
    batch_size: int | None = None,
    verbose: bool = True,
    per_query: bool = False,
) -> pd.DataFrame:
    """Encode ``dataset``'s corpus (cached), retrieve exactly and score with ir_measures.

    Runs the plain PyTerrier pipeline ``query_encoder >> index.retriever()`` in ``pt.Experiment``.
    ``backend`` / ``batch_size``: the encoding backend and the texts per encoding batch of a model
    given as a spec (not the retrieval method, which is exact search).
    """
    name = dataset.removeprefix("irds:")
    check_dataset(name)  # an unknown id fails before any model is loaded
    enc = model if isinstance(model, DenseEncoder) else DenseEncoder(
        model, backend=backend, batch_size=batch_size, verbose=verbose)
    ds = pt.get_dataset(f"irds:{name}")
    index = enc.index(ds)
    pipeline = enc.query_encoder() >> index.retriever(num_results=num_results)
    parsed = [ir_measures.parse_measure(m) for m in measures]
    return pt.Experiment(
        [pipeline], ds.get_topics(), ds.get_qrels(), eval_metrics=parsed,
        names=[os.path.basename(enc.model_name)], perquery=per_query,
    )
