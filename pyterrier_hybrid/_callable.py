"""Modules that share their name with their main function (``train``, ``sweep``)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_module_callable(module_name: str, fn: Callable[..., Any]) -> None:
    """Let ``pyterrier_hybrid.<name>`` be called like its function.

    Once a submodule is imported, Python binds the package attribute of the same name to the
    module, hiding the lazily exported function; the module then forwards calls to ``fn`` so
    ``pyterrier_hybrid.train(...)`` and ``from pyterrier_hybrid import train; train(...)`` always work.
    """

    class _CallableModule(types.ModuleType):
        __doc__ = sys.modules[module_name].__doc__

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
