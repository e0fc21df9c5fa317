"""The command line: parsing, TrainConfig from flags, and bad input reported (exit 2) before any model loads."""

from __future__ import annotations

import pytest

from pyterrier_hybrid.cli import _config, build_parser, main


def test_train_flags_build_the_config():
    args = build_parser().parse_args(["train", "--train", "mlqa-r", "--sampling", "x-y", "--steps", "5",
                                      "--batch-mix", "random", "--freeze-embeddings", "--languages", "en,de"])
    cfg = _config(args)
    assert (cfg.sampling, cfg.alpha, cfg.steps, cfg.batch_mix, cfg.freeze_embeddings, cfg.languages) == \
        ("x-y", 0.0, 5, "random", True, ("en", "de"))
    assert _config(build_parser().parse_args(["train", "--train", "mlqa-r"])) == type(cfg)()  # no flag: defaults


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--train", "mlqa-r", "--sampling", "x-y", "--alpha", "0.5"], "sampling x-y fixes alpha at 0.0"),
    (["merge", "--model", "a", "--out", "x"], "merge needs at least two --model"),
    (["evaluate", "--benchmark", "xquad-r", "--calibration", "none"] + ["--settings", "mono,bogus"],
     "unknown settings"),
])
def test_bad_input_exits_2_with_the_reason(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_parser_refuses_unknown_choices(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["datasets", "--benchmark", "squad"])
    assert "invalid choice: 'squad' (choose from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--calibration", "lsa"])
    assert "unknown calibration 'lsa'" in capsys.readouterr().err
