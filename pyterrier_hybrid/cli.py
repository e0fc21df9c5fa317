"""pyterrier-hybrid: hybrid batch training and language-pair evaluation of multilingual dense retrievers
(XQuAD-R, MLQA-R) for PyTerrier."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

# the subcommands by group (each module adds its parsers; nothing heavy is imported before a command runs)
from .cli_evaluate import add_combine_parser, add_datasets_parser, add_evaluate_parser
from .cli_models import add_index_parser, add_merge_parser, add_models_parser
from .cli_train import add_scaling_parser, add_sweep_parser, add_train_parser
from .cli_train import config_from_args as _config  # noqa: F401 - its former name here (tests, callers)

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``pyterrier-hybrid`` parser: every subcommand, each from the module of its group."""
    from ._version import __version__

    p = argparse.ArgumentParser(prog="pyterrier-hybrid", description=__doc__)
    p.add_argument("--version", action="version", version=f"pyterrier-hybrid {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    add_datasets_parser(sub)
    add_evaluate_parser(sub)
    add_combine_parser(sub)
    add_train_parser(sub)
    add_sweep_parser(sub)
    add_scaling_parser(sub)
    add_models_parser(sub)
    add_merge_parser(sub)
    add_index_parser(sub)
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
    from .progress import quiet, set_quiet

    args = build_parser().parse_args(argv)
    was_quiet = quiet()
    if getattr(args, "quiet", False):
        set_quiet(True)  # our bars and notices, and transformers' / the hub's bars
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return _run(args)
    finally:  # main() called in a notebook (or a test) leaves the switch as it found it
        if quiet() != was_quiet:
            set_quiet(was_quiet)


def _run(args: argparse.Namespace) -> int:
    from datasets_ext.lareqa import UnknownDatasetError

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
