"""A model trained in a notebook records the train(...) call, not the kernel's command line."""

from __future__ import annotations

import json
import sys

from pyterrier_hybrid import train
from pyterrier_hybrid._version import command_line


def test_notebook_training_records_the_call(tiny_model_dir, tmp_path, monkeypatch):
    # what sys.argv is inside a Jupyter kernel
    monkeypatch.setattr(sys, "argv", ["/venv/lib/python3.11/site-packages/ipykernel_launcher.py", "-f",
                                      "/root/.local/share/jupyter/runtime/kernel-1234.json"])
    assert command_line() is None
    out = tmp_path / "nb-run"
    train(str(tiny_model_dir), "mlqa-r", out=out, steps=2, batch_size=4, languages=["en", "de"], max_examples=200,
          max_query_length=32, max_passage_length=32, verbose=False)  # plumbing: the tiny model, real data
    record = json.loads((out / "train_config.json").read_text())
    assert record["command"] is None
    assert record["call"] == (f"train({str(tiny_model_dir)!r}, 'mlqa-r', out={str(out)!r}, steps=2, batch_size=4, "
                              "max_query_length=32, max_passage_length=32, languages=['en', 'de'], max_examples=200)")
    card = (out / "model" / "README.md").read_text()
    assert record["call"] in card and "ipykernel" not in card and "kernel-1234" not in card


def test_command_line_is_kept_for_scripts(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pyterrier-hybrid", "train", "--steps", "2"])
    assert command_line() == ["pyterrier-hybrid", "train", "--steps", "2"]
