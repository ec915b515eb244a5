"""Content encoders: the ``ContentEncoder`` interface and a registry of named encoders.

An encoder turns a batch of item contents (texts, images) into ``[n, dim]`` float32 vectors.
Its ``fingerprint`` names the model and every setting that changes the output, so cached
vectors of one encoder are never served for another. Built-ins: ``minilm`` and ``hashing``
(text, ``content.text``), ``cnn`` (images, ``content.image``). Users add their own::

    @register_encoder("my_encoder")
    class MyEncoder(ContentEncoder): ...

    create_encoder("my_encoder", dim=32)
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from funnelrec.errors import ConfigError

F32Matrix = npt.NDArray[np.float32]
_BUILTIN_MODULES = ("funnelrec.content.text", "funnelrec.content.image")


class ContentEncoder(ABC):
    """Batched encoder of one modality (``"text"`` or ``"image"``)."""

    modality: ClassVar[str] = "text"

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of the output vectors."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the model and settings: equal fingerprints give equal vectors."""

    @abstractmethod
    def encode(self, inputs: Sequence[Any]) -> F32Matrix:
        """``[len(inputs), dim]`` float32 vectors of a batch of contents."""

    def content_bytes(self, item: Any) -> bytes:
        """The bytes that identify one input (hashed by the cache); text by default."""
        if not isinstance(item, str):
            raise TypeError(f"{type(self).__name__} expects str inputs, got {type(item).__name__}")
        return item.encode("utf-8")


E = TypeVar("E", bound=ContentEncoder)
_ENCODERS: dict[str, Callable[..., ContentEncoder]] = {}


def register_encoder(name: str) -> Callable[[type[E]], type[E]]:
    """Class decorator registering an encoder under ``name`` (a name is registered once)."""

    def decorate(cls: type[E]) -> type[E]:
        if name in _ENCODERS and _ENCODERS[name] is not cls:
            raise ConfigError(f"content encoder {name!r} is registered twice")
        _ENCODERS[name] = cls
        return cls

    return decorate


def encoder_names() -> list[str]:
    _load_builtins()
    return sorted(_ENCODERS)


def create_encoder(name: str, params: dict[str, Any] | None = None) -> ContentEncoder:
    """Instantiate the encoder registered as ``name`` with keyword ``params``."""
    _load_builtins()
    if name not in _ENCODERS:
        raise ConfigError(f"unknown content encoder {name!r}; known: {', '.join(encoder_names())}")
    try:
        return _ENCODERS[name](**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"content encoder {name!r}: bad params {params!r} ({exc})") from None


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
