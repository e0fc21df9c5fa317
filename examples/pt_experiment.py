# %% [markdown]
# # The plain PyTerrier way, then the language-pair study
#
# One language pair of XQuAD-R (German questions, English candidates) evaluated with
# `pt.Experiment`, comparing candidate texts (sentence alone vs sentence + paragraph), an exact vs
# an HNSW retriever, and BM25 (PISA) alone and re-ranked by the dense model; then the same model
# and BM25 through `pyterrier_hybrid.evaluate`, which scores every language setting at once. Runs offline (`LAREQA_DATA_DIR` points at the files);
# `pt.init()` is never needed.

# %%
from __future__ import annotations

import os

import pyterrier as pt
import pyterrier_dr
from ir_measures import AP, R, nDCG

import pyterrier_hybrid
from pyterrier_hybrid import DenseEncoder
from pyterrier_hybrid.lexical import BM25

N_TOPICS = int(os.environ.get("EXAMPLE_TOPICS", 200))  # the test suite runs it with fewer

# %%
dataset = pt.get_dataset("irds:xquad-r/de-en")
topics = dataset.get_topics().head(N_TOPICS)
qrels = dataset.get_qrels()
qrels = qrels[qrels.qid.isin(topics.qid)]
print(f"{len(topics)} topics, {len(qrels)} qrels")

# %% [markdown]
# The offline default model; a second encoder shares its weights but encodes each candidate
# sentence with its paragraph. `encoder.index(dataset)` encodes the corpus once and keeps it in
# the vector cache, so a second run does not re-encode.

# %%
encoder = DenseEncoder()
context_encoder = DenseEncoder(encoder.model, text_mode="text+context")
index = encoder.index(dataset)
context_index = context_encoder.index(dataset)
print(index, len(index))

# %%
pipelines = [
    encoder.query_encoder() >> index.retriever(num_results=None),  # full rankings, as the study scores
    context_encoder.query_encoder() >> context_index.retriever(num_results=None),
    encoder.query_encoder() >> index.retriever(method="hnsw"),
]
results = pt.Experiment(
    pipelines,
    topics,
    qrels,
    eval_metrics=[AP, R @ 1, R @ 10, nDCG @ 10],
    names=["exact, text", "exact, text+context", "hnsw, text"],
    baseline=0,
    correction="holm",
)
print(results.to_string())

# %% [markdown]
# The lexical baseline (the `bm25` extra): BM25 over a PISA index of the candidates, each text
# analysed in its language, and the classic pipeline of BM25's top 100 re-ranked by the dense
# model, beside dense retrieval. German questions share few words with English candidates, so
# BM25 alone finds little; re-ranking can only reorder what BM25 found.

# %%
bm25 = BM25().retriever(dataset)
# re-rank with the candidates' vectors already in the index (pyterrier-dr's FlexIndex scorer on the
# same directory); encoder.text_scorer() after pt.text.get_text(dataset, "text") re-encodes the texts
rerank = bm25 % 100 >> encoder.query_encoder() >> pyterrier_dr.FlexIndex(str(index.path)).scorer()
lexical = pt.Experiment(
    [bm25, rerank, pipelines[0]],
    topics,
    qrels,
    eval_metrics=[AP, R @ 10, R @ 100],
    names=["BM25", "BM25 >> dense", "dense"],
)
print(lexical.to_string())

# %% [markdown]
# The same model and BM25 over every setting of these two languages (de-de, de-en, en-de, en-en
# and the de+en pool) in one call: each language is encoded once (from the cache when present),
# then all pairs are scored with matrix products; BM25 gets mono, cross and multilingual rows too.
# The dense de-en row equals the `pt.Experiment` row above.

# %%
study = pyterrier_hybrid.evaluate([encoder, BM25()], languages=["de", "en"], limit_queries=N_TOPICS)
print(study.summary().to_string())
print(study.pairs().to_string())
out = os.environ.get("EXAMPLE_OUT", "runs/example")
pyterrier_hybrid.write_outputs(study, out)
print(f"wrote {out}")
