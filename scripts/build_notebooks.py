"""Build the example notebooks: ``examples/<name>.ipynb`` from the percent-format ``<name>.py``,
executed (outputs and figures included) with nbclient, from the repository root. The test suite
executes the same notebooks on small data (``tests/test_notebooks.py``).

Run: ``LAREQA_DATA_DIR=../shared/data .venv/bin/python scripts/build_notebooks.py [NAME ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NAMES = ("walkthrough", "pt_experiment")


def execute(name: str, *, timeout: int = 1800):
    """The executed notebook of ``examples/<name>.py`` (not written)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(EXAMPLES / f"{name}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return nb


def main(names: list[str]) -> None:
    import nbformat

    from pyterrier_hybrid.fs import atomic_write

    for name in names or NAMES:
        nb = execute(name)
        atomic_write(EXAMPLES / f"{name}.ipynb", lambda p, nb=nb: nbformat.write(nb, str(p)))
        print(f"wrote examples/{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
