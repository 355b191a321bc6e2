"""Lazy re-exports for packages whose submodules differ a lot in import cost."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, owners: dict[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A module-level `__getattr__` (PEP 562) for `package`: a name listed under a submodule
    in `owners` is imported from it on first use (and kept), so importing the package, or a
    light submodule of it, does not load the heavy ones."""
    module_of = {name: module for module, names in owners.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
