"""Old import paths of modules that moved, kept working for one release with a warning.

Each old module (``ldl/layers.py`` and the like) is two lines that forward every name to the
new module; importing it warns once, naming the new path.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def forward(old: str, new: str) -> Callable[[str], Any]:
    """Warn that ``old`` moved to ``new``; return a module ``__getattr__`` that reads names from ``new``."""
    warnings.warn(
        f"{old} has moved to {new}; import from {new} (the old path will be removed in the next release).",
        DeprecationWarning,
        stacklevel=3,
    )
    module = importlib.import_module(new)

    def __getattr__(name: str) -> Any:
        return getattr(module, name)

    return __getattr__
