"""Option types and option groups shared by the ``pyterrier-hybrid`` subcommands (light: no torch)."""

from __future__ import annotations

import argparse

from datasets_ext import BENCHMARKS  # light: no torch

__all__ = ["BENCHMARK_NAMES", "add_calibration_options", "add_encoding_options", "csv_list", "floats", "ints",
           "weights"]

#: "xquad-r or mlqa-r": the language-pair benchmarks, for help texts and errors.
BENCHMARK_NAMES = " or ".join(BENCHMARKS)


def csv_list(value: str) -> list[str]:
    """A comma-separated flag value as a list (blank items dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def weights(value: str) -> list[float]:
    """Comma-separated weights (``merge --weights``)."""
    try:
        return [float(v) for v in csv_list(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated weights, got {value!r}") from e


def ints(value: str) -> list[int]:
    """Comma-separated integers (``--seeds``, ``--ks``)."""
    try:
        return [int(v) for v in csv_list(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from e


def floats(value: str) -> list[float]:
    """Comma-separated numbers in [0, 1] (``--alphas``, ``--wise``)."""
    try:
        return [float(v) for v in csv_list(value)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {value!r}") from e


def add_encoding_options(p: argparse.ArgumentParser, *, what: str = "encoding backend",
                         batch_size: bool = False) -> None:
    """``--backend`` (and with ``batch_size``, ``--batch-size``: texts per encoding batch)."""
    from .backends import BACKENDS, DEFAULT_BACKEND

    p.add_argument("--backend", choices=list(BACKENDS), help=f"{what} (default: {DEFAULT_BACKEND})")
    if batch_size:
        p.add_argument("--batch-size", type=int, help="encoding batch size (default: the backend's measured best)")


def add_calibration_options(p: argparse.ArgumentParser) -> None:
    """``--calibration`` and ``--calibration-source`` (evaluate, sweep, scaling)."""
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
