"""Checkpoints and the step log of a training run: incomplete checkpoints set aside, log truncation."""

from __future__ import annotations

import json

from pyterrier_hybrid.train_log import COMPLETE_MARKER, last_checkpoint, truncate_log


def test_last_checkpoint_skips_and_moves_incomplete_ones(tmp_path):
    assert last_checkpoint(tmp_path / "none") is None
    for step, complete in ((10, True), (20, True), (30, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / COMPLETE_MARKER).write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint name
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert (tmp_path / "incomplete-checkpoint-30").is_dir() and not (tmp_path / "checkpoint-30").exists()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")


def test_truncate_log_keeps_the_checkpoints_state(tmp_path):
    log = tmp_path / "training_log.jsonl"
    lines = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)] + [{"step": 2, "eval_loss": 0.5}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    truncate_log(log, 2)
    kept = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["step"] for x in kept] == [1, 2, 2] and kept[-1]["eval_loss"] == 0.5
    truncate_log(tmp_path / "absent.jsonl", 1)  # nothing to do
    assert not (tmp_path / "absent.jsonl").exists()
