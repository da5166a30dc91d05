"""A user's own code named in a config: ``"package.module:name"`` imported, and shipped to Ray workers.

A config names a fitness function, a task class or an environment class as
``"package.module:name"`` (``name`` may be dotted: ``"mod:Class.method"``).
The module is imported with the config file's folder (``code_dir``, set when
the config is read) first on the import path, so a ``myproblem.py`` beside
the config just works; otherwise anything on ``sys.path`` / ``PYTHONPATH``.

On Ray the workers need the same modules: :func:`runtime_env_for` names the
top-level package (or single-file module) of each one in a Ray runtime
environment (``{"py_modules": [...]}``), which the evaluator passes with
every task, so they reach each node of a cluster without being installed
there. Installed packages (anything under ``site-packages``) and this
project's own are not shipped: the workers have them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: packages every worker has already
_OWN_PACKAGES = ("evo", "networks")


@contextmanager
def _code_dir_first(code_dir: str | None) -> Iterator[None]:
    """``code_dir`` first on ``sys.path`` for an import (left in place only if it was there before)."""
    if not code_dir:
        yield
        return
    path = str(Path(code_dir).resolve())
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        yield
    finally:
        if added and path in sys.path:
            sys.path.remove(path)


def split_reference(reference: str, field: str) -> tuple[str, str]:
    """``("package.module", "name")`` of ``"package.module:name"``; ValueError naming the field otherwise."""
    module, sep, name = str(reference).partition(":")
    if not sep or not module.strip() or not name.strip() or ":" in name:
        raise ValueError(f"{field} = {reference!r}: expected 'package.module:name'")
    return module.strip(), name.strip()


def import_module(module: str, field: str, reference: str, code_dir: str | None = None) -> Any:
    """Import ``module`` with ``code_dir`` first on the path; ValueError naming the field if it fails."""
    try:
        with _code_dir_first(code_dir):
            return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - an import can raise anything; the user must see what
        where = f" (looked in {code_dir!r} and the Python path)" if code_dir else " (looked on the Python path)"
        raise ValueError(f"{field} = {reference!r}: cannot import {module!r}{where}: {type(exc).__name__}: {exc}") from None


def import_object(reference: str, field: str, code_dir: str | None = None) -> Any:
    """The object ``"package.module:name"`` names; ValueError naming ``field`` when it cannot be imported or found."""
    module_name, name = split_reference(reference, field)
    obj = import_module(module_name, field, reference, code_dir)
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{field} = {reference!r}: module {module_name!r} has no {name!r}") from None
    return obj


def _shippable_path(module_name: str) -> str | None:
    """The folder of a module's top-level package (or its single file) when workers may lack it; None otherwise."""
    top = module_name.split(".")[0]
    if top in _OWN_PACKAGES or top == "__main__":
        return None  # ours are installed on every worker; a script's functions travel by value (cloudpickle)
    module = sys.modules.get(top)
    if module is None:
        return None
    paths = list(getattr(module, "__path__", []) or [])
    path = paths[0] if paths else getattr(module, "__file__", None)
    if not path or not (Path(path).is_dir() or (Path(path).is_file() and Path(path).suffix == ".py")):
        return None  # built-in, compiled, or without a location
    parts = Path(path).resolve().parts
    if "site-packages" in parts or "dist-packages" in parts or Path(path).resolve().is_relative_to(Path(sys.base_prefix).resolve()):
        return None  # installed: every worker of a cluster built from the same environment has it
    return str(Path(path).resolve())


def runtime_env_for(module_names: Sequence[str]) -> dict[str, Any] | None:
    """A Ray runtime environment that ships the (already imported) user modules to the workers; None if none needs it."""
    paths = sorted({p for name in module_names if (p := _shippable_path(name)) is not None})
    return {"py_modules": paths} if paths else None
