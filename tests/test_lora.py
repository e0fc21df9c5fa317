"""LoRA training (``lora_rank``): only the adapter trains, the merged model equals base + (alpha/r) B A,
the adapter is saved alone, and a run resumes exactly from a checkpoint. Plumbing on the tiny model;
the quality comparison at equal budget is docs/lora (real model, full XQuAD-R)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pyterrier_hybrid import load_model
from pyterrier_hybrid.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from pyterrier_hybrid.models import model_fingerprint
from pyterrier_hybrid.train_config import TrainConfig
from pyterrier_hybrid.train_data import from_lareqa
from pyterrier_hybrid.training import train


@pytest.fixture(scope="module")
def subset(data_dir):
    ex = from_lareqa("mlqa-r")
    return [ex[i] for i in sorted(np.random.default_rng(0).choice(len(ex), 64, replace=False))]


def _losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines() if '"loss"' in line]


def test_lora_trains_the_adapter_merges_exactly_and_resumes(tiny_model_dir, subset, tmp_path):
    out = tmp_path / "run"
    kw = dict(sampling="hybrid", alpha=0.5, batch_size=8, save_steps=2, eval_fraction=0.1, out=out, seed=3, lr=1e-2,
              max_query_length=32, max_passage_length=32, verbose=False, keep_checkpoints=True, keep="last",
              lora_rank=4)
    first = train(str(tiny_model_dir), subset, steps=4, **kw)
    ref = _losses(first.log_path)
    config = json.loads((out / "train_config.json").read_text())
    lora = config["model"]["lora"]
    assert lora["rank"] == 4 and lora["alpha"] == 8
    assert config["model"]["fingerprint"] == model_fingerprint(load_model(tiny_model_dir))  # the base's
    assert config["model"]["frozen_parameters"] == config["model"]["parameters"]  # the base is frozen
    card = (out / "model" / "README.md").read_text()  # the model card of every trained model
    assert card.startswith("---\nbase_model: ") and "license: other" in card  # in-memory examples: no known license
    assert "`<64 in-memory examples>`: check its license" in card
    assert "LoRA rank 4 (alpha 8" in card and "- **Measured**: not yet" in card
    assert "hybrid 0.5 (exact mix: 2 monolingual and 2 cross-lingual batches); 4 steps x batch 8" in card

    base = load_model(tiny_model_dir).state_dict()
    merged = load_model(out / "model").state_dict()
    assert merged.keys() == base.keys()  # plain weights: no adapter left in out/model
    adapter = load_file(str(out / "adapter" / ADAPTER_WEIGHTS))
    meta = json.loads((out / "adapter" / ADAPTER_CONFIG).read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "adapter" / ADAPTER_WEIGHTS).stat().st_mode & 0o777 == 0o666 & ~umask  # not a temp file's 0600
    assert meta["parameters"] == lora["parameters"] == sum(t.numel() for t in adapter.values()) > 0
    changed = set()
    for key in adapter:
        if ".lora_A." not in key:
            continue
        layer = key.split(".lora_A.")[0]
        a, b = adapter[key].double(), adapter[key.replace("lora_A", "lora_B")].double()
        name = "0.model." + layer + ".weight"
        expect = base[name].double() + meta["lora_alpha"] / meta["r"] * b @ a
        torch.testing.assert_close(merged[name].double(), expect, rtol=0, atol=1e-6)
        changed.add(name)
    assert changed and len(changed) == 6  # one encoder block: q, k, v, attention out, intermediate, output
    untouched = [k for k in base if k not in changed]
    assert untouched and all(torch.equal(base[k], merged[k]) for k in untouched)
    assert any(not torch.equal(base[k], merged[k]) for k in changed)

    # killed after step 4's log line, before its checkpoint: resuming from checkpoint-2 repeats the losses
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    again = train(str(tiny_model_dir), subset, steps=4, resume=True, **kw)
    assert again.global_step == 4
    assert _losses(again.log_path) == pytest.approx(ref, rel=1e-4, abs=1e-5)
    resumed = load_model(out / "model").state_dict()
    assert all(torch.allclose(resumed[k], merged[k], atol=1e-6) for k in merged)


def test_lora_options_are_checked_and_define_the_model():
    with pytest.raises(ValueError, match="lora_rank must be a positive integer"):
        TrainConfig(lora_rank=0)
    assert TrainConfig(lora_rank=8).differences(TrainConfig()) == {"lora_rank": (8, None)}
    assert TrainConfig.from_json({}).lora_rank is None  # runs before the option trained all weights
