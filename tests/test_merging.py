"""Weight interpolation (WiSE-FT / model soups): exact arithmetic, records, refusals, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from pyterrier_hybrid import load_model, merge_models
from pyterrier_hybrid.cli import main


@pytest.fixture(scope="module")
def two_models(tiny_model_dir, perturbed_tiny_model_dir):
    """The tiny model and a perturbed copy of it (plumbing: the arithmetic, not rankings)."""
    return str(tiny_model_dir), str(perturbed_tiny_model_dir)


def test_wise_interpolates_every_parameter(two_models, tmp_path):
    a, b = two_models
    out = merge_models([a, b], [0.25, 0.75], out=tmp_path / "m")
    merged, ma, mb = (load_model(str(p)).state_dict() for p in (out, a, b))
    for k, v in merged.items():
        if v.is_floating_point():
            expected = (0.25 * ma[k].double() + 0.75 * mb[k].double()).to(v.dtype)
            torch.testing.assert_close(v, expected, rtol=0, atol=0)
        else:
            assert torch.equal(v, ma[k])
    assert "added_tokens_decoder" in json.loads((out / "tokenizer_config.json").read_text())
    record = json.loads((out / "merge.json").read_text())
    assert record["weights"] == [0.25, 0.75] and [s["spec"] for s in record["sources"]] == [a, b]
    assert record["sources"][0]["fingerprint"] != record["sources"][1]["fingerprint"] != record["fingerprint"]
    assert {"versions", "cpu", "command"} <= set(record)


def test_uniform_soup_and_in_memory_models_stay_unchanged(two_models, tmp_path):
    a, b = two_models
    ma = load_model(a)
    before = {k: v.clone() for k, v in ma.state_dict().items()}
    merge_models([ma, b], out=tmp_path / "soup")
    assert all(torch.equal(before[k], v) for k, v in ma.state_dict().items())
    assert json.loads((tmp_path / "soup" / "merge.json").read_text())["weights"] == [0.5, 0.5]


def test_refusals(two_models, tmp_path, default_model_dir):
    a, b = two_models
    with pytest.raises(ValueError, match="sum to 1"):
        merge_models([a, b], [0.5, 0.6], out=tmp_path / "x")
    with pytest.raises(ValueError, match="2 weights for 3 models"):
        merge_models([a, b, a], [0.5, 0.5], out=tmp_path / "x")
    with pytest.raises(ValueError, match="at least two models"):
        merge_models([a], out=tmp_path / "x")
    with pytest.raises(ValueError, match="one architecture"):
        merge_models([a, str(default_model_dir)], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing half-written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        merge_models([a, b], out=tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_cli_merge(two_models, tmp_path, capsys):
    a, b = two_models
    assert main(["merge", "--model", a, "--model", b, "--wise", "0.5", "--out", str(tmp_path / "w")]) == 0
    assert "weights [0.5, 0.5]" in capsys.readouterr().out
    assert main(["merge", "--model", a, "--model", b, "--wise", "1.5", "--out", str(tmp_path / "v")]) == 2
    assert "--wise must be in (0, 1)" in capsys.readouterr().err
