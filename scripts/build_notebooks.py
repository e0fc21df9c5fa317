"""Build the example notebooks: ``examples/<name>.ipynb`` from the percent-format ``<name>.py``,
executed (outputs and figures included) with nbclient, from the repository root, then cleaned of
what belongs to the machine (absolute paths, progress-bar widgets, tqdm's IProgress warning). The
test suite executes the same notebooks on small data (``tests/test_notebooks.py``).

Run: ``LAREQA_DATA_DIR=../shared/data .venv/bin/python scripts/build_notebooks.py [NAME ...]``;
``--clean-only`` cleans the committed notebooks without running them.
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


#: Output MIME type of a Jupyter widget (a tqdm.auto bar): live state only, nothing to commit.
WIDGET = "application/vnd.jupyter.widget-view+json"


def _paths() -> list[tuple[str, str]]:
    """Machine-specific prefixes and what the committed notebook shows instead."""
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    return [(site, "<site-packages>"), (sys.prefix, "<venv>"), (str(REPO) + "/", ""), (str(REPO), "."),
            (str(Path.home()), "~")]


def clean(nb):
    """``nb`` without what belongs to the machine that ran it: absolute paths (venv, checkout,
    home), widget outputs of progress bars, and tqdm's "IProgress not found" warning."""
    paths = _paths()

    def text(value: str) -> str:
        lines = [line for line in value.splitlines(keepends=True)
                 if "IProgress not found" not in line and "from .autonotebook import tqdm" not in line]
        value = "".join(lines)
        for old, new in paths:
            value = value.replace(old, new)
        return value

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if WIDGET in out.get("data", {}):
                continue
            if "text" in out:
                out["text"] = text(out["text"])
                if not out["text"]:
                    continue
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in out.get("data", {}):
                    out["data"][mime] = text(out["data"][mime])
            outputs.append(out)
        cell["outputs"] = outputs
    nb.metadata.pop("widgets", None)
    return nb


def main(names: list[str]) -> None:
    import nbformat

    from pyterrier_hybrid.fs import atomic_write

    for name in names or NAMES:
        nb = clean(execute(name))
        atomic_write(EXAMPLES / f"{name}.ipynb", lambda p, nb=nb: nbformat.write(nb, str(p)))
        print(f"wrote examples/{name}.ipynb")


def clean_committed(names: list[str]) -> None:
    """Clean the committed notebooks in place (no execution)."""
    import nbformat

    from pyterrier_hybrid.fs import atomic_write

    for name in names or NAMES:
        nb = clean(nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4))
        atomic_write(EXAMPLES / f"{name}.ipynb", lambda p, nb=nb: nbformat.write(nb, str(p)))
        print(f"cleaned examples/{name}.ipynb")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--clean-only" in args:
        clean_committed([a for a in args if a != "--clean-only"])
    else:
        main(args)
