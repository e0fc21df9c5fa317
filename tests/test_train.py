"""Training: a short real run (loss goes down), the step log, checkpoints, exact resume,
divergence handling and the CLI. The real offline model only where the claim needs it."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from pyterrier_hybrid import load_model
from pyterrier_hybrid.cli import main
from pyterrier_hybrid.sampler import HybridBatchSampler, build_views
from pyterrier_hybrid.train_data import from_lareqa, split_validation, to_jsonl
from pyterrier_hybrid.training import TrainingDivergedError, train

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def subset(data_dir):
    """64 MLQA-R examples drawn with a fixed seed (every language has >= 8 of them)."""
    ex = from_lareqa("mlqa-r")
    return [ex[i] for i in sorted(np.random.default_rng(0).choice(len(ex), 64, replace=False))]


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def step_lines(path):
    return [line for line in read_log(path) if "loss" in line]


def planned(examples, *, batch_size, alpha, seed, eval_fraction, steps, epochs=1):
    """The batches training will see: the default exact mix over a budget of ``steps``."""
    train_ex, _ = split_validation(examples, eval_fraction, seed)
    views = build_views(train_ex, seed=seed, cross=alpha < 1)
    s = HybridBatchSampler(views.dataset, batch_size=batch_size, seed=seed, views=views, alpha=alpha, mix="exact",
                           budget=steps)
    return views, [b for e in range(epochs) for b in s.plan(e)]


@torch.no_grad()
def infonce(model, rows, temperature=0.05):
    """Mean InfoNCE (in-batch + hard negatives, cosine / temperature) of fixed batches of rows."""
    model.eval()
    losses = []
    for batch in rows:
        q = model.encode([r["anchor"] for r in batch], prompt=PROMPTS["query"], convert_to_tensor=True,
                         normalize_embeddings=True)
        docs = [r["positive"] for r in batch] + [r["negative_1"] for r in batch]
        d = model.encode(docs, prompt=PROMPTS["document"], convert_to_tensor=True, normalize_embeddings=True)
        scores = q @ d.T / temperature
        losses.append(torch.nn.functional.cross_entropy(scores, torch.arange(len(batch))).item())
    return float(np.mean(losses))


def test_real_model_loss_goes_down_and_log_matches_plan(default_model_dir, subset, tmp_path):
    steps, bs, alpha, seed = 3, 8, 0.5, 0
    views, plan = planned(subset, batch_size=bs, alpha=alpha, seed=seed, eval_fraction=0.0, steps=steps)
    trained_rows = [[views.dataset[i] for i in b.indices] for b in plan[:steps]]
    model = load_model(default_model_dir)
    before = infonce(model, trained_rows)
    res = train(model, subset, sampling="hybrid", alpha=alpha, steps=steps, batch_size=bs, lr=5e-5,
                warmup_ratio=0.0, freeze_embeddings=True, max_query_length=48, max_passage_length=48,
                eval_fraction=0.0, out=tmp_path / "run", seed=seed, verbose=False)
    after = infonce(res.model, trained_rows)
    print(f"InfoNCE on the trained batches: before {before:.4f}, after {after:.4f}")
    assert after < before - 0.05, (before, after)

    lines = read_log(res.log_path)
    assert [line["step"] for line in lines] == list(range(1, steps + 1))
    for line, info in zip(lines, plan, strict=False):
        assert set(line) >= {"step", "loss", "kind", "query_langs", "passage_langs", "lr"}
        assert math.isfinite(line["loss"]) and line["lr"] > 0
        assert (line["kind"], tuple(line["query_langs"]), tuple(line["passage_langs"])) == (
            info.kind, info.query_langs, info.passage_langs)
    assert {line["kind"] for line in lines} == {"mono", "cross"}
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["options"]["alpha"] == 0.5 and config["model"]["frozen_parameters"] > 0
    assert config["result"]["global_step"] == steps and config["versions"]["torch"] == torch.__version__
    # finished: the model stays, the checkpoints (optimizer state, 1.4 GB each at full scale) are removed
    assert config["result"]["checkpoints_removed"] and not (tmp_path / "run" / "checkpoints").exists()
    assert json.loads((tmp_path / "run" / "model" / "config_sentence_transformers.json").read_text())[
        "prompts"] == PROMPTS
    # the saved tokenizer loads without a Python pass over tokenizer.json (tokenizer_files)
    assert "added_tokens_decoder" in json.loads((tmp_path / "run" / "model" / "tokenizer_config.json").read_text())


def test_resume_is_exact_and_continues(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    kw = dict(sampling="hybrid", alpha=0.5, batch_size=8, save_steps=2, eval_fraction=0.1, out=out, seed=1,
              max_query_length=32, max_passage_length=32, verbose=False, keep_checkpoints=True)
    first = train(str(tiny_model_dir), subset, steps=4, **kw)
    ref = step_lines(first.log_path)
    assert [line["step"] for line in ref] == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert sum("eval_loss" in line for line in read_log(first.log_path)) == 2
    with pytest.raises(ValueError, match="resume=True"):
        train(str(tiny_model_dir), subset, steps=4, **kw)

    # interrupted after step 4's log line but before its checkpoint: resume from checkpoint-2
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    again = train(str(tiny_model_dir), subset, steps=4, resume=True, **kw)
    lines = step_lines(again.log_path)
    assert [line["step"] for line in lines] == [1, 2, 3, 4]  # lines 3, 4 of the first run were dropped
    for a, b in zip(ref, lines, strict=True):  # same batches, same weights: same losses
        assert (a["kind"], a["query_langs"], a["passage_langs"]) == (b["kind"], b["query_langs"], b["passage_langs"])
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)

    # continue to step 6 from checkpoint-4
    final = train(str(tiny_model_dir), subset, steps=6, resume=True, **kw)
    lines = step_lines(final.log_path)
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    # the exact mix keeps the first run's 4-step schedule; steps 5 and 6 draw their kind at random
    _, plan = planned(subset, batch_size=8, alpha=0.5, seed=1, eval_fraction=0.1, steps=4, epochs=2)
    assert [(line["kind"], tuple(line["query_langs"])) for line in lines] == [
        (b.kind, b.query_langs) for b in plan[:6]]
    assert final.global_step == 6
    state = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())  # at most two: the best and the latest
    assert len(kept) == 2 and "checkpoint-6" in kept and state["best_model_checkpoint"].endswith(tuple(kept))
    config = json.loads((out / "train_config.json").read_text())
    assert config["resumed_from"].endswith("checkpoint-4")
    model = load_model(out / "model")
    assert model.prompts == PROMPTS
    assert model.encode(["query: a"]).shape == (1, 32)


def _weights(path):
    from sentence_transformers import SentenceTransformer

    return {k: v.clone() for k, v in SentenceTransformer(str(path), device="cpu").state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep", ["best", "last"])
def test_keep_best_or_last_checkpoint(tiny_model_dir, subset, tmp_path, monkeypatch, keep):
    """The validation loss is made to rise after step 2: ``best`` ends with checkpoint-2, ``last``
    with checkpoint-4; both record the best checkpoint and which one was kept."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    original = MultipleNegativesRankingLoss.forward
    evals = {"n": 0}

    def forward(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        if not torch.is_grad_enabled():  # the validation loss: 1, 2, 3, ... per evaluation batch
            evals["n"] += 1
            return loss * 0 + evals["n"]
        return loss

    monkeypatch.setattr(MultipleNegativesRankingLoss, "forward", forward)
    out = tmp_path / keep
    result = train(str(tiny_model_dir), subset, steps=4, batch_size=8, save_steps=2, eval_fraction=0.1, keep=keep,
                   out=out, verbose=False, max_query_length=32, max_passage_length=32, keep_checkpoints=True)
    ckpts = out / "checkpoints"
    assert result.best_checkpoint.endswith("checkpoint-2")
    assert result.kept_checkpoint.endswith("checkpoint-2" if keep == "best" else "checkpoint-4")
    config = json.loads((out / "train_config.json").read_text())
    assert config["options"]["keep"] == keep and config["result"]["kept_checkpoint"] == result.kept_checkpoint
    model = _weights(out / "model")
    assert _same(model, _weights(result.kept_checkpoint))
    other = ckpts / ("checkpoint-4" if keep == "best" else "checkpoint-2")
    assert not _same(model, _weights(other))
    with pytest.raises(ValueError, match="unknown keep 'first'; valid: best, last"):
        train(str(tiny_model_dir), subset, steps=4, keep="first", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_nan_loss_stops_with_last_good_checkpoint(tiny_model_dir, subset, tmp_path, monkeypatch):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    original = MultipleNegativesRankingLoss.forward
    calls = {"train": 0}

    def forward(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        if torch.is_grad_enabled():  # training steps only, not the validation loss
            calls["train"] += 1
            if calls["train"] >= 3:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(MultipleNegativesRankingLoss, "forward", forward)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at step 3.*checkpoint-2") as err:
        train(str(tiny_model_dir), subset, steps=6, batch_size=8, save_steps=2, out=out, verbose=False,
              max_query_length=32, max_passage_length=32)
    assert err.value.step == 3 and err.value.last_checkpoint.endswith("checkpoint-2")
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-2"]
    last = read_log(out / "training_log.jsonl")[-1]
    assert last["step"] == 3 and last["loss"] is None and last["diverged"]
    assert not (out / "model").exists()


def test_cli_train_and_errors(tiny_model_dir, subset, tmp_path, capsys):
    assert main(["train", "--train", "mlqa-r", "--alpha", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["train", "--train", "nope.txt", "--model", str(tiny_model_dir), "--out", str(tmp_path / "y")]) == 2
    assert "unknown training source" in capsys.readouterr().err

    src = to_jsonl(subset, tmp_path / "train.jsonl")
    out = tmp_path / "cli"
    assert main(["train", "--model", str(tiny_model_dir), "--train", str(src), "--sampling", "x-y",
                 "--languages", "en,de,ar", "--steps", "2", "--batch-size", "4", "--max-passage-length", "32",
                 "--keep", "last", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "train_config.json").read_text())["options"]["keep"] == "last"
    lines = step_lines(out / "training_log.jsonl")
    assert [line["kind"] for line in lines] == ["cross", "cross"]
    assert all(set(line["query_langs"]) | set(line["passage_langs"]) <= {"en", "de", "ar"} for line in lines)
    assert load_model(out / "model").prompts == PROMPTS


AMX = {"avx2": True, "avx512": True, "avx512_bf16": True, "vnni": True, "amx": True}
AVX2 = {"avx2": True, "avx512": False, "avx512_bf16": False, "vnni": False, "amx": False}


def test_precision_follows_the_cpu_and_resume_keeps_it(tiny_model_dir, subset, tmp_path, monkeypatch):
    import warnings

    from pyterrier_hybrid import cpu
    from pyterrier_hybrid.train_config import resolve_precision

    kw = dict(sampling="hybrid", alpha=0.5, batch_size=8, steps=2, save_steps=2, eval_fraction=0.0, seed=3,
              max_query_length=32, max_passage_length=32, verbose=False)
    losses, configs = {}, {}
    for name, features in (("avx2", AVX2), ("amx", AMX)):
        monkeypatch.setattr(cpu, "cpu_features", lambda f=features: f)
        res = train(str(tiny_model_dir), subset, out=tmp_path / name, **kw)
        losses[name] = [line["loss"] for line in step_lines(res.log_path)]
        configs[name] = json.loads((tmp_path / name / "train_config.json").read_text())
    assert configs["avx2"]["options"]["precision"] == "fp32" and configs["amx"]["options"]["precision"] == "bf16"
    assert configs["amx"]["options"]["precision_requested"] == "auto"
    assert configs["amx"]["cpu"]["kind"] == "amx" and configs["amx"]["cpu"]["features"] == AMX
    # the same batches from the same weights: bf16 products really ran (losses move), and stay close
    assert losses["avx2"] != losses["amx"]
    assert losses["amx"] == pytest.approx(losses["avx2"], abs=0.05)

    # resuming the fp32 run on a bf16 CPU (auto) would mix precisions: refused, nothing changed
    before = (tmp_path / "avx2" / "train_config.json").read_text()
    with pytest.raises(ValueError, match="was trained in fp32; resuming it in bf16 would mix precisions"):
        train(str(tiny_model_dir), subset, out=tmp_path / "avx2", resume=True, **{**kw, "steps": 3})
    assert (tmp_path / "avx2" / "train_config.json").read_text() == before
    # explicit bf16 without native bf16 is allowed, with a warning that it is slow
    monkeypatch.setattr(cpu, "cpu_features", lambda: AVX2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16") == "bf16"
    assert any("trains slower than fp32" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="unknown precision 'fp16'; valid: auto, fp32, bf16"):
        train(str(tiny_model_dir), subset, out=tmp_path / "x", precision="fp16", **kw)
    assert not (tmp_path / "x").exists()
