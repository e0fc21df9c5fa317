"""The example notebooks (examples/*.ipynb, built from the percent-format examples/*.py by
scripts/build_notebooks.py) run top to bottom on small data, and the committed notebooks hold the
code of their .py sources (issue 17)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", REPO / "scripts" / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["walkthrough", "pt_experiment"])
def test_notebook_runs_on_small_data(name, tmp_path, monkeypatch, data_dir):
    import nbformat

    monkeypatch.setenv("EXAMPLE_TOPICS", "10")
    monkeypatch.setenv("EXAMPLE_TRAIN_STEPS", "2")
    monkeypatch.setenv("EXAMPLE_OUT", str(tmp_path / "out"))
    nb = _builder().execute(name, timeout=900)  # raises CellExecutionError on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "mono_map" in text  # the study's summary table was printed
    nbformat.validate(nb)


@pytest.mark.parametrize("name", ["walkthrough", "pt_experiment"])
def test_committed_notebook_matches_its_source(name):
    import jupytext
    import nbformat

    committed = nbformat.read(REPO / "examples" / f"{name}.ipynb", as_version=4)
    source = jupytext.read(REPO / "examples" / f"{name}.py")
    code = [c.source for c in committed.cells if c.cell_type == "code"]
    assert code == [c.source for c in source.cells if c.cell_type == "code"], \
        f"examples/{name}.ipynb is stale: run scripts/build_notebooks.py {name}"
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in committed.cells if c.cell_type == "code" for o in c.get("outputs", [])) or name != "walkthrough"


@pytest.mark.parametrize("name", ["walkthrough", "pt_experiment"])
def test_committed_notebook_has_nothing_of_the_machine_that_built_it(name):
    import sys

    text = (REPO / "examples" / f"{name}.ipynb").read_text()
    for leak in (sys.prefix, str(REPO), str(Path.home()) + "/", "IProgress", "application/vnd.jupyter.widget-view"):
        assert leak not in text, f"examples/{name}.ipynb holds {leak!r}: run examples/build_notebooks.py {name}"


def test_clean_removes_paths_widgets_and_the_iprogress_warning():
    import sys

    import nbformat

    builder = _builder()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=f"{sys.prefix}/lib/tqdm/auto.py:21: TqdmWarning: IProgress "
                                                             "not found.\n  from .autonotebook import tqdm as notebook_tqdm\n"),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "1"},
                                                     "text/plain": "HBox()"}),
        nbformat.v4.new_output("stream", name="stdout", text=f"DenseIndex('{Path.home()}/.cache/x') in {REPO}/runs\n"),
    ])])
    outputs = builder.clean(nb).cells[0].outputs
    assert [o.get("text") for o in outputs] == ["DenseIndex('~/.cache/x') in runs\n"]
