"""TrainConfig: every training option defined once (defaults, validation, JSON, matching), and the
CLI building it from its flags without defaults of its own."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pyterrier_hybrid.train_config import TrainConfig, describe_differences


def test_defaults_and_sampling_fix_alpha():
    cfg = TrainConfig()
    assert (cfg.sampling, cfg.alpha, cfg.batch_size, cfg.keep, cfg.precision) == ("hybrid", 0.5, 32, "best", "auto")
    assert TrainConfig(sampling="x-x-mono").alpha == 1.0 and TrainConfig(sampling="x-y", alpha=0).alpha == 0.0
    assert TrainConfig(alpha=0.25).alpha == 0.25
    assert TrainConfig(languages=["en", "de"]).languages == ("en", "de")  # hashable, frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3


@pytest.mark.parametrize(("options", "message"), [
    ({"sampling": "mixed"}, "unknown sampling 'mixed'; valid: hybrid, x-x-mono, x-y"),
    ({"alpha": 7}, r"alpha must be in \[0, 1\]"),
    ({"sampling": "x-x-mono", "alpha": 7}, r"alpha must be in \[0, 1\]"),
    ({"sampling": "x-x-mono", "alpha": 0.3}, "sampling x-x-mono fixes alpha at 1.0, got alpha 0.3"),
    ({"keep": "first"}, "unknown keep 'first'; valid: best, last"),
    ({"precision": "fp16"}, "unknown precision 'fp16'; valid: auto, fp32, bf16"),
    ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; valid: adamw_torch_fused, adamw_torch"),
    ({"steps": 0}, "steps must be a positive integer, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
    ({"lr": 0}, "lr must be a finite number > 0"),
    ({"temperature": -1}, "temperature must be a finite number > 0"),
    ({"eval_fraction": 1.0}, r"eval_fraction must be in \[0, 1\)"),
    ({"num_negatives": -1}, "num_negatives must be a non-negative integer"),
    ({"batch_size": 1, "num_negatives": 0}, "InfoNCE no negative"),
    ({"languages": "en"}, "languages must be a list of language codes"),
    ({"languages": []}, "languages is empty"),
    ({"prompts": {"question": "q: "}}, "prompt keys must be 'query' and 'document'"),
    ({"negative_language": "paragraph"}, "unknown negative_language 'paragraph'; valid: passage, query, other, mix"),
    ({"num_positives": 0}, "num_positives must be a positive integer, got 0"),
    ({"translation_weight": -0.5}, "translation_weight must be a finite number >= 0"),
    ({"language_weights": "ar:2"}, "language_weights must look like 'ar=2,hi=1.5'"),
    ({"language_weights": {"ar": 0}}, r"language_weights\['ar'\] must be a finite number > 0"),
    ({"language_weights": "ar=x"}, "the weight of 'ar' must be a number"),
    ({"cached_loss": True, "num_positives": 2}, "cached_loss .* computes plain InfoNCE only"),
])
def test_bad_options_say_what_is_valid(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def test_make_replaces_and_rejects_unknown_names():
    base = TrainConfig(steps=60, lr=5e-5)
    cfg = TrainConfig.make(base, steps=240)
    assert (cfg.steps, cfg.lr) == (240, 5e-5) and base.steps == 60
    with pytest.raises(TypeError, match="unknown training option.*stpes.*valid: sampling, alpha, steps"):
        TrainConfig.make(stpes=3)


def test_json_round_trip_and_legacy_records():
    cfg = TrainConfig(sampling="x-y", steps=240, languages=["ar", "en"], prompts="e5", precision="fp32")
    doc = json.loads(json.dumps(cfg.to_json()))
    assert TrainConfig.from_json(doc) == cfg and doc["languages"] == ["ar", "en"]
    # a run recorded before keep / precision existed: it kept the best checkpoint and trained in fp32
    legacy = {k: v for k, v in doc.items() if k not in ("keep", "precision", "optimizer")}
    old = TrainConfig.from_json({**legacy, "source": "mlqa-r", "lr_scheduler": "linear"})  # extra keys ignored
    assert (old.keep, old.precision, old.optimizer) == ("best", "fp32", "adamw_torch")
    # ... and before the objectives beyond the paper: passage negatives, one positive, no translation loss, uniform
    new = ("negative_language", "num_positives", "translation_weight", "language_weights")
    older = TrainConfig.from_json({k: v for k, v in doc.items() if k not in new})
    assert [getattr(older, k) for k in new] == ["passage", 1, 0.0, None] and older.matches(TrainConfig.make(cfg))


def test_objectives_normalise_compare_and_card():
    from pyterrier_hybrid.train_config import card_lines

    cfg = TrainConfig(language_weights="hi=2, ar=2.5,en=1")
    assert cfg.language_weights == {"ar": 2.5, "hi": 2.0}  # sorted; weight 1 is the default, dropped
    assert TrainConfig(language_weights={"en": 1}).language_weights is None and TrainConfig().matches(
        TrainConfig(language_weights={"en": 1.0}))
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert cfg.differences(TrainConfig()) == {"language_weights": ({"ar": 2.5, "hi": 2.0}, None)}
    assert card_lines(TrainConfig().to_json()) == [] and card_lines({}) == []
    assert card_lines(TrainConfig.make(cfg, negative_language="mix", num_positives=4, translation_weight=0.25)
                      .to_json()) == ["hard negatives from the answer's paragraph (negative_language mix)",
                                      "multi-positive InfoNCE (the answer in up to 4 languages)",
                                      "translation-ranking loss weight 0.25", "language weights ar 2.5, hi 2"]


def test_differences_cover_what_changes_the_model_only():
    a = TrainConfig(steps=60, save_steps=20, eval_fraction=0.1)
    assert a.matches(TrainConfig.make(a, save_steps=10, eval_fraction=0.2))  # logging / selection data only
    diff = a.differences(TrainConfig.make(a, steps=240, keep="last"))
    assert diff == {"steps": (60, 240), "keep": ("best", "last")}
    assert describe_differences(diff) == "steps 60 vs 240, keep 'best' vs 'last'"


def test_resolved_precision_follows_the_cpu(monkeypatch):
    from pyterrier_hybrid import cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: {"avx2": True, "amx": False, "avx512_bf16": False})
    assert TrainConfig().resolved().precision == "fp32"
    monkeypatch.setattr(cpu, "cpu_features", lambda: {"avx2": True, "amx": True, "avx512_bf16": True})
    assert TrainConfig().resolved().precision == "bf16" and TrainConfig(precision="fp32").resolved().precision == "fp32"


def test_cli_builds_the_config_from_given_flags_only():
    from pyterrier_hybrid.cli import _config, build_parser

    args = build_parser().parse_args(["train", "--train", "mlqa-r", "--steps", "240", "--lr", "5e-5", "--keep", "last",
                                      "--languages", "ar,en", "--freeze-embeddings", "--precision", "fp32"])
    assert _config(args) == TrainConfig(steps=240, lr=5e-5, keep="last", languages=("ar", "en"),
                                        freeze_embeddings=True, precision="fp32")
    assert _config(build_parser().parse_args(["train", "--train", "mlqa-r"])) == TrainConfig()  # defaults: one home
    objectives = build_parser().parse_args(["train", "--train", "mlqa-r", "--negative-language", "query",
                                            "--num-positives", "3", "--translation-weight", "0.5",
                                            "--language-weights", "ar=2,th=2"])
    assert _config(objectives) == TrainConfig(negative_language="query", num_positives=3, translation_weight=0.5,
                                              language_weights={"ar": 2.0, "th": 2.0})
    sweep = build_parser().parse_args(["sweep", "--steps", "240", "--train-languages", "de,en", "--keep", "last"])
    assert _config(sweep) == TrainConfig(steps=240, languages=("de", "en"), keep="last")
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "(default: 32)" in help_text and "(default: auto)" in help_text  # TrainConfig's defaults shown


def test_strategies_table_names_runs_and_samplers():
    from pyterrier_hybrid.sampler import SAMPLERS, HybridBatchSampler
    from pyterrier_hybrid.train_config import SAMPLINGS, STRATEGIES, parse_run_name, strategy_for_alpha

    assert SAMPLINGS == {"hybrid": None, "x-x-mono": 1.0, "x-y": 0.0}
    assert all(SAMPLERS[s.sampler] is HybridBatchSampler for s in STRATEGIES.values())
    assert [strategy_for_alpha(a).run_name(a) for a in (1.0, 0.0, 0.5, 0.25)] == ["x-x-mono", "x-y", "hybrid-a0.50",
                                                                               "hybrid-a0.25"]
    assert parse_run_name("hybrid-a0.25") == (STRATEGIES["hybrid"], 0.25)
    assert parse_run_name("x-y") == (STRATEGIES["x-y"], 0.0)
    assert parse_run_name("base") is None and parse_run_name("hybrid-afoo") is None
    assert [strategy_for_alpha(a).describe(a) for a in (1.0, 0.0, 0.5)] == ["X-X-mono", "X-Y", "hybrid 0.5"]


def test_each_option_carries_its_help_role_and_flag():
    from dataclasses import fields

    from pyterrier_hybrid.cli import build_parser
    from pyterrier_hybrid.train_config import _LEGACY, _MODEL_DEFINING

    meta = {f.name: f.metadata for f in fields(TrainConfig)}
    assert set(_MODEL_DEFINING) == set(meta) - {"save_steps", "keep_checkpoints", "eval_fraction"}
    assert _LEGACY["batch_mix"] == "random" and _LEGACY["lora_rank"] is None and "seed" not in _LEGACY
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "batch_mix")
    assert train.choices == ["exact", "random"] and train.help.startswith(meta["batch_mix"]["help"])
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert {n for n, m in meta.items() if m["cli"]} <= flags and all(m["help"] for m in meta.values())
