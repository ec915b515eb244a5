"""Import every module of a stage package so its ``@register`` decorators run."""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package: str, path: list[str]) -> None:
    """Import ``package.<module>`` for every module found on ``path`` (no sub-packages)."""
    for info in pkgutil.iter_modules(path):
        if not info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
