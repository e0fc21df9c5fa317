"""Corpus encoding in shards (issue 24): `pyterrier-hybrid index` in one process, under torchrun
(2 ranks, gloo on CPU), as independent jobs merged afterwards, killed and resumed; sharded search.

Real XQuAD-R sentences. The equality and resume tests use the real offline model with the fp32
backend; the tiny random model only carries the plumbing (job arrays, merge, bad input).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyterrier_dr
import pytest

from pyterrier_hybrid import DenseIndex
from pyterrier_hybrid.cli import main
from pyterrier_hybrid.corpus import open_corpus
from pyterrier_hybrid.index.sharded import ShardedIndex, shard_bounds
from pyterrier_hybrid.indexing import index_corpus, merge_index

DOCS = 40  # real-model runs: 20 documents per rank
CHUNK = 4  # 5 resumable chunks per shard
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def _xquad_docs(lang: str, n: int) -> list:
    import ir_datasets

    import datasets_ext  # noqa: F401

    return list(ir_datasets.load(f"xquad-r/{lang}-{lang}").docs_iter()[:n])


@pytest.fixture(scope="module")
def jsonl(data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "en_de.jsonl"
    docs = _xquad_docs("en", DOCS // 2) + _xquad_docs("de", DOCS // 2)
    path.write_text("".join(json.dumps({"docno": d.doc_id, "text": d.text}) + "\n" for d in docs))
    return path


def _torchrun(*args: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "pyterrier_hybrid", "index", *args, "--quiet"]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=900)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def _real_args(jsonl: Path, out: Path, model_dir: Path) -> list[str]:
    return [str(jsonl), "--out", str(out), "--model", str(model_dir), "--backend", "torch", "--chunk-size", str(CHUNK)]


@pytest.fixture(scope="module")
def one_process(jsonl, default_model_dir, tmp_path_factory) -> DenseIndex:
    out = tmp_path_factory.mktemp("one") / "index"
    index_corpus(jsonl, out, model=str(default_model_dir), backend="torch", chunk_size=CHUNK, verbose=False)
    return DenseIndex(out)


@pytest.fixture(scope="module")
def two_ranks(jsonl, default_model_dir, tmp_path_factory) -> DenseIndex:
    out = tmp_path_factory.mktemp("two") / "index"
    done = _torchrun(*_real_args(jsonl, out, default_model_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return DenseIndex(out)


# -- corpora ----------------------------------------------------------------------------------------


def test_corpus_ranges_of_irds_jsonl_and_tsv(data_dir, tmp_path: Path) -> None:
    docs = _xquad_docs("de", 30)
    corpus = open_corpus("irds:xquad-r/de-de")
    assert len(corpus) == len(list(open_corpus("xquad-r/de-de").docs()))
    assert list(corpus.docs(3, 7)) == [(d.doc_id, d.text) for d in docs[3:7]]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"_id": d.doc_id, "body": d.text}) + "\n\n" for d in docs))
    (tmp_path / "c.tsv").write_text("docno\ttext\n" + "".join(f"{d.doc_id}\t{d.text}\n" for d in docs))
    for corpus in (open_corpus(tmp_path / "c.jsonl", text_field="body"), open_corpus(tmp_path / "c.tsv")):
        assert len(corpus) == 30
        assert list(corpus.docs(28)) == [(d.doc_id, d.text) for d in docs[28:]]
        pieces = [list(corpus.docs(a, b)) for a, b in shard_bounds(30, 4)]
        assert sum(pieces, []) == [(d.doc_id, d.text) for d in docs]  # shards cover the corpus once, in order
    with pytest.raises(ValueError, match=r"c\.jsonl:1: expected an object with a docno .* and a 'text' field"):
        list(open_corpus(tmp_path / "c.jsonl").docs())
    with pytest.raises(FileNotFoundError, match="neither a file .* nor an ir_datasets id"):
        open_corpus("irds:xquad-r/xx-yy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_corpus(tmp_path / "missing.jsonl")


# -- torchrun ---------------------------------------------------------------------------------------


def test_two_ranks_equal_one_process(one_process: DenseIndex, two_ranks: DenseIndex, jsonl: Path) -> None:
    assert two_ranks.docnos().tolist() == one_process.docnos().tolist()
    assert two_ranks.docnos().tolist() == [docno for docno, _ in open_corpus(jsonl).docs()]
    assert float(np.abs(np.asarray(two_ranks.vectors()) - np.asarray(one_process.vectors())).max()) <= 1e-5
    meta = two_ranks.metadata
    assert meta["world_size"] == 2 and meta["shard_bounds"] == [[0, DOCS // 2], [DOCS // 2, DOCS]]
    assert [w["rank"] for w in meta["written_by"]] == [0, 1]
    assert {w["threads"] for w in meta["written_by"]} == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert one_process.metadata["written_by"][0]["threads"] == len(os.sched_getaffinity(0))
    assert sorted(p.name for p in two_ranks.path.iterdir()) == ["docnos.npids", "pt_meta.json", "vecs.f4"]
    flex = pyterrier_dr.FlexIndex(str(two_ranks.path))
    docnos, vectors, _ = flex.payload()
    assert np.array_equal(vectors, two_ranks.vectors())
    assert docnos.fwd[DOCS - 1] == two_ranks.docnos()[-1]


def test_killed_rank_resumes_to_the_uninterrupted_index(two_ranks: DenseIndex, jsonl: Path, default_model_dir,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "index"
    run = _torchrun(*_real_args(jsonl, out, default_model_dir), wait=False)
    partial = out / "shards" / ".00001-of-00002.partial"
    while not (partial / "chunk-000000.npz").exists():
        assert run.poll() is None, run.stdout.read()[-3000:]
        time.sleep(0.05)
    rank1 = [p for p in psutil.Process(run.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
    assert len(rank1) == 1
    rank1[0].send_signal(signal.SIGKILL)
    assert run.wait(timeout=300) != 0
    assert not (out / "pt_meta.json").exists() and not (out / "shards" / "00001-of-00002").exists()
    kept = len(list(partial.glob("chunk-*.npz")))
    assert 1 <= kept < DOCS // 2 // CHUNK

    again = _torchrun(*_real_args(jsonl, out, default_model_dir))
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = DenseIndex(out)
    assert resumed.docnos().tolist() == two_ranks.docnos().tolist()
    assert np.array_equal(resumed.vectors(), two_ranks.vectors())  # bit for bit: same chunks, same batches
    assert resumed.metadata["written_by"][1]["documents_encoded"] == DOCS // 2 - kept * CHUNK
    assert {k: v for k, v in resumed.metadata.items() if k != "written_by"} == \
        {k: v for k, v in two_ranks.metadata.items() if k != "written_by"}
    assert sorted(p.name for p in out.iterdir()) == ["docnos.npids", "pt_meta.json", "vecs.f4"]


# -- job arrays, merge and sharded search (tiny model: plumbing) --------------------------------


@pytest.fixture(scope="module")
def array_build(data_dir, tiny_model_dir, tmp_path_factory) -> dict:
    """xquad-r/en-en (1180 sentences) as 3 independent jobs, kept as a sharded index and merged."""
    root = tmp_path_factory.mktemp("array")
    for shard in (2, 0, 1):  # any order
        assert main(["index", "irds:xquad-r/en-en", "--out", str(root / "build"), "--model", str(tiny_model_dir),
                     "--backend", "torch", "--shard", str(shard), "--num-shards", "3", "--quiet"]) == 0
    assert main(["index", "merge", str(root / "build"), "--out", str(root / "merged"), "--quiet"]) == 0
    assert main(["index", "merge", str(root / "build"), "--keep-shards", "--quiet"]) == 0
    return {"root": root, "sharded": ShardedIndex(root / "build"), "merged": DenseIndex(root / "merged")}


@pytest.fixture(scope="module")
def queries(array_build, tiny_model_dir) -> pd.DataFrame:
    """12 real questions encoded by the tiny model."""
    import ir_datasets

    from pyterrier_hybrid import DenseEncoder

    queries = list(ir_datasets.load("xquad-r/en-en").queries_iter())[:12]
    frame = pd.DataFrame({"qid": [q.query_id for q in queries], "query": [q.text for q in queries]})
    return DenseEncoder(str(tiny_model_dir), backend="torch", cache=False).query_encoder()(frame)


def test_job_array_merge_is_the_corpus_in_order(array_build: dict) -> None:
    merged, sharded = array_build["merged"], array_build["sharded"]
    corpus = open_corpus("xquad-r/en-en")
    assert merged.docnos().tolist() == [docno for docno, _ in corpus.docs()]
    assert sharded.docnos().tolist() == merged.docnos().tolist()
    assert merged.metadata["shard_bounds"] == [list(b) for b in shard_bounds(len(corpus), 3)]
    assert merged.metadata["world_size"] == 3  # three independent jobs
    assert np.array_equal(np.concatenate([s.vectors() for s in sharded.shards()]), merged.vectors())
    assert len(pyterrier_dr.FlexIndex(str(merged.path))) == len(corpus)


@pytest.mark.parametrize("num_results", [10, None])
def test_sharded_search_equals_merged_search(array_build: dict, queries: pd.DataFrame, num_results) -> None:
    merged = array_build["merged"].retriever(num_results=num_results)(queries)
    sharded = array_build["sharded"].retriever(num_results=num_results)(queries)
    pd.testing.assert_frame_equal(sharded.drop(columns="query_vec"), merged.drop(columns="query_vec"))
    assert len(merged) == len(queries) * (10 if num_results else 1180)


def test_sharded_faiss_search_rescoring_is_exact(array_build: dict, queries: pd.DataFrame) -> None:
    exact = array_build["merged"].retriever(num_results=1180, drop_query_vec=True)(queries)
    hnsw = array_build["sharded"].retriever(num_results=10, method="hnsw", drop_query_vec=True)(queries)
    both = hnsw.merge(exact, on=["qid", "docno"], suffixes=("", "_exact"))
    assert len(both) == len(hnsw) == 10 * len(queries)
    assert (both["score"] == both["score_exact"]).all() and (both["docid"] == both["docid_exact"]).all()
    assert (hnsw.groupby("qid")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()


# -- bad input ----------------------------------------------------------------------------------------


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_bad_inputs_fail_clearly_and_lose_nothing(data_dir, jsonl: Path, tiny_model_dir, default_model_dir,
                                                  tmp_path: Path, capsys) -> None:
    tiny = {"model": str(tiny_model_dir), "backend": "torch", "verbose": False}
    small = tmp_path / "small.jsonl"
    small.write_text("".join(jsonl.read_text().splitlines(keepends=True)[:4]))

    assert main(["index", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert "corpus file" in capsys.readouterr().err and not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="cannot split 4 documents into 5 shards: some shards would be empty"):
        index_corpus(small, tmp_path / "x", shard=0, num_shards=5, **tiny)
    assert not (tmp_path / "x").exists()

    # shard 0 of 2 with the tiny model, shard 1 of 2 with the real one (another model and dimension)
    index_corpus(small, tmp_path / "a", shard=0, num_shards=2, **tiny)
    index_corpus(small, tmp_path / "b", shard=1, num_shards=2, model=str(default_model_dir), backend="torch",
                 verbose=False)
    before = {d: _snapshot(tmp_path / d) for d in ("a", "b")}
    with pytest.raises(ValueError, match=r"is a shard of another index: its model / backend .* shards of one index"):
        merge_index([tmp_path / "a", tmp_path / "b"], out=tmp_path / "c", verbose=False)
    with pytest.raises(ValueError, match=r"mismatched --num-shards: .* being built in 2 shards, this run asks for 3"):
        index_corpus(small, tmp_path / "a", shard=1, num_shards=3, **tiny)
    index_corpus(small, tmp_path / "d", shard=1, num_shards=4, **tiny)
    with pytest.raises(ValueError, match="mismatched --num-shards: .* a shard of 2, .* of 4"):
        merge_index([tmp_path / "a", tmp_path / "d"], out=tmp_path / "c", verbose=False)
    with pytest.raises(ValueError, match=r"incomplete set of shards: 1 of 2 missing \(shard numbers \[1\]\)"):
        merge_index([tmp_path / "a"], verbose=False)
    with pytest.raises(ValueError, match="holds the build of another index .*corpus"):
        index_corpus(jsonl, tmp_path / "a", shard=1, num_shards=2, **tiny)
    assert {d: _snapshot(tmp_path / d) for d in ("a", "b")} == before and not (tmp_path / "c").exists()

    other = DenseIndex.build(tmp_path / "other", ["x", "y"], np.eye(2, dtype=np.float32))
    with pytest.raises(FileExistsError, match="holds another index .* nothing was changed"):
        index_corpus(small, other.path, **tiny)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty and not an index build .*todo.txt"):
        index_corpus(small, tmp_path / "notes", **tiny)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me" and len(DenseIndex(other.path)) == 2


def test_rerun_of_a_finished_index_changes_nothing(one_process: DenseIndex, jsonl: Path, default_model_dir,
                                                   tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(one_process.path, copy)
    before = _snapshot(copy)
    index_corpus(jsonl, copy, model=str(default_model_dir), backend="torch", chunk_size=CHUNK, verbose=False)
    assert _snapshot(copy) == before


def test_progress_bar_names_the_work_and_counts_documents(jsonl: Path, tiny_model_dir, tmp_path: Path, capsys) -> None:
    assert main(["index", str(jsonl), "--out", str(tmp_path / "i"), "--model", str(tiny_model_dir),
                 "--backend", "torch", "--chunk-size", "16"]) == 0
    err = capsys.readouterr().err
    assert f"{tiny_model_dir}: encoding {jsonl} shard 1/1" in err and "doc/s" in err and f"{DOCS}/{DOCS}" in err
    assert main(["index", str(jsonl), "--out", str(tmp_path / "q"), "--model", str(tiny_model_dir),
                 "--backend", "torch", "--quiet"]) == 0
    assert "doc/s" not in capsys.readouterr().err
