"""Load a function's handler module by path, as Lambda does (each folder has its own app.py)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_module(name: str, instance: str = "") -> ModuleType:
    """`functions/<name>/app.py`, imported once per `instance` (a container's own copy)."""
    module_name = f"functions_{name}_app{instance}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        # A half-initialised module must not stay cached: the next load retries the import
        # (and shows its real error) instead of finding a module without `handler`.
        del sys.modules[module_name]
        raise
    return module


_fresh = itertools.count()


def fresh_module(name: str) -> ModuleType:
    """A new container of `functions/<name>/app.py`: a fresh module instance that builds its
    objects from the environment as it is now (as a new Lambda container would)."""
    return load_module(name, f"_fresh{next(_fresh)}")


def fresh_handler(name: str) -> Any:
    return fresh_module(name).handler
