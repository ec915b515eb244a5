"""Stage registries: ``RECALL``, ``PRERANK``, ``RANK``, ``RERANK``.

A stage class registers itself by name (``@RECALL.register("popular")``) in its own module;
the funnel creates stages from config with ``RECALL.create(name, params)``. Importing a
registry's stage package (``funnelrec.recall`` ...) registers every built-in stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from funnelrec.errors import ConfigError
from funnelrec.io import read_json
from funnelrec.stage import Stage

S = TypeVar("S", bound=Stage[Any])


class Registry(Generic[S]):
    """Name → stage class for one stage kind."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self._package = package
        self._classes: dict[str, type[S]] = {}

    def register(self, name: str) -> Callable[[type[S]], type[S]]:
        """Class decorator: register the class under ``name`` (sets its ``registered_name``);
        a second class under the same name raises ``ConfigError``."""

        def decorate(cls: type[S]) -> type[S]:
            if name in self._classes and self._classes[name] is not cls:
                raise ConfigError(f"{self.kind} stage {name!r} is registered twice")
            cls.registered_name = name
            self._classes[name] = cls
            return cls

        return decorate

    def _ensure_loaded(self) -> None:
        importlib.import_module(self._package)

    def names(self) -> list[str]:
        """Every registered name, sorted (built-in stages loaded first)."""
        self._ensure_loaded()
        return sorted(self._classes)

    def get(self, name: str) -> type[S]:
        """The class registered as ``name``; ``ConfigError`` listing the known names if none."""
        self._ensure_loaded()
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} stage {name!r}; known: {', '.join(sorted(self._classes))}"
            ) from None

    def create(self, name: str, params: Mapping[str, Any] | None = None) -> S:
        """A new (unfitted) ``name`` stage with ``params`` validated by its ``params_model``."""
        cls = self.get(name)
        return cls(cls.validate_params(dict(params or {})))

    def load(self, directory: str | Path) -> S:
        """The fitted stage saved in ``directory`` (its class named by ``stage.json``)."""
        meta = read_json(Path(directory) / "stage.json")
        return self.get(str(meta["name"])).load(directory)


RECALL: Registry[Any] = Registry("recall", "funnelrec.recall")
PRERANK: Registry[Any] = Registry("prerank", "funnelrec.prerank")
RANK: Registry[Any] = Registry("rank", "funnelrec.rank")
RERANK: Registry[Any] = Registry("rerank", "funnelrec.rerank")

REGISTRIES: dict[str, Registry[Any]] = {r.kind: r for r in (RECALL, PRERANK, RANK, RERANK)}
