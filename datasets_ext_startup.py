"""Start-up hook: registers the LAReQA ids with ir_datasets when ir_datasets is imported.

ir_datasets has no plugin discovery, so the package installs ``pyterrier_hybrid_irds.pth``
into site-packages; Python runs its one line at start-up, which imports this module (unless
``PYTERRIER_HYBRID_IRDS_HOOK=0``) and calls :func:`install`. That only puts a finder first in
``sys.meta_path``: nothing is imported until ``ir_datasets`` is, and then ``datasets_ext`` is
imported right after it, so ``ir_datasets.load("xquad-r/ar-en")`` and ``ir_datasets export
xquad-r/ar-en docs`` work with nothing else imported. A failure to register is a warning,
never a failed ``import ir_datasets``. Kept tiny (standard library only): every Python start
of the environment imports it.
"""

import os
import sys

#: Set to ``0`` to turn the hook off (the ``.pth`` line checks it before importing this module).
ENV = "PYTERRIER_HYBRID_IRDS_HOOK"
TARGET = "ir_datasets"


def _register() -> None:
    if "datasets_ext" in sys.modules:  # being imported (it imports ir_datasets first): it registers itself
        return
    try:
        import datasets_ext  # noqa: F401
    except Exception as e:  # never break `import ir_datasets`
        import warnings

        warnings.warn(
            f"pyterrier-hybrid could not register the xquad-r / mlqa-r ids with ir_datasets ({e!r}); "
            f"`import datasets_ext` does it explicitly, {ENV}=0 turns this hook off",
            stacklevel=2,
        )


class _Loader:
    """Wraps ir_datasets' own loader: executes the module, then registers our ids."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        uninstall()
        module.__loader__ = module.__spec__.loader = self._loader  # leave no trace on the module
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Finder:
    """``sys.meta_path`` entry that waits for the first import of ``ir_datasets``.

    It leaves ``sys.meta_path`` when ir_datasets is executed, not when its spec is found:
    ``python -m ir_datasets`` finds the spec once before importing the package.
    """

    _finding = False

    def find_spec(self, name, path=None, target=None):
        if name != TARGET or self._finding:
            return None
        from importlib.util import find_spec

        self._finding = True
        try:
            spec = find_spec(name)  # the finders after this one
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def installed() -> bool:
    """Whether the hook is waiting for ``ir_datasets`` to be imported."""
    return any(isinstance(f, _Finder) for f in sys.meta_path)


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]


def install() -> None:
    """Register now if ``ir_datasets`` is already imported, else when it is (idempotent)."""
    if os.environ.get(ENV, "1") == "0":
        return
    if TARGET in sys.modules:
        _register()
    elif not installed():
        sys.meta_path.insert(0, _Finder())  # before PathFinder, which would find it first
