"""Image encoder (``cnn``): a CNN with explicitly given, local weights.

Architectures: ``small_cnn`` (``models.image_cnn.SmallCNN``, always available) or
``torchvision:<name>`` (e.g. ``torchvision:resnet18``, needs ``torchvision`` installed; the
classifier head is dropped). Weights are never downloaded: ``weights`` must name a local
state-dict file, and a missing file is a ``MissingWeightsError`` naming it. Inputs are image
file paths or PIL images; they are converted to RGB, resized to ``size`` × ``size`` and
normalised with the ImageNet mean/std.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from funnelrec.content.registry import ContentEncoder, F32Matrix, register_encoder
from funnelrec.errors import ConfigError
from funnelrec.models.image_cnn import SmallCNN

_MEAN = np.asarray([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.asarray([0.229, 0.224, 0.225], dtype=np.float32)


class MissingWeightsError(ConfigError):
    """The image model's weights file is not on disk (nothing is downloaded)."""


@register_encoder("cnn")
class ImageEncoder(ContentEncoder):
    """CNN image encoder over local weights (see module doc).

    Args:
        weights: path of a ``torch.save``-d state dict of the architecture.
        arch: ``small_cnn`` or ``torchvision:<model name>``.
        dim: output size of ``small_cnn`` (torchvision models keep their feature size).
        size: input side length in pixels. batch_size: images per forward pass.
    """

    modality = "image"

    def __init__(
        self,
        weights: str,
        arch: str = "small_cnn",
        dim: int = 64,
        size: int = 64,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        path = Path(weights)
        if not path.is_file():
            raise MissingWeightsError(
                f"image encoder {arch!r}: weights file {str(path)!r} not found "
                "(weights are never downloaded; save a state dict there first)"
            )
        self.arch, self.size, self.batch_size, self.device = arch, size, batch_size, device
        self.model = _build(arch, dim)
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"image encoder {arch!r}: {path} does not fit: {exc}") from None
        if arch != "small_cnn":  # keep the pooled features, drop the classifier
            for head in ("fc", "classifier", "heads"):
                if hasattr(self.model, head):
                    setattr(self.model, head, nn.Identity())
        self.model = self.model.to(device).eval()
        with torch.no_grad():
            probe = torch.zeros(1, 3, size, size, device=device)
            self._dim = int(self.model(probe).shape[1])
        stat = path.stat()
        self._fingerprint = f"cnn:{arch}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{size}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def content_bytes(self, item: Any) -> bytes:
        if isinstance(item, Image.Image):
            return f"{item.mode}:{item.size}".encode() + item.tobytes()
        return Path(item).read_bytes()

    def encode(self, inputs: Sequence[Any]) -> F32Matrix:
        out = [np.zeros((0, self.dim), dtype=np.float32)]
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            pixels = np.stack([self._pixels(item) for item in chunk])
            with torch.no_grad():
                batch = torch.from_numpy(pixels).to(self.device)
                out.append(self.model(batch).cpu().numpy().astype(np.float32))
        return np.ascontiguousarray(np.concatenate(out))

    def _pixels(self, item: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
        """``[3, size, size]`` normalised pixels of one image (path or PIL image)."""
        image = item if isinstance(item, Image.Image) else Image.open(item)
        rgb = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        array = (np.asarray(rgb, dtype=np.float32) / 255.0 - _MEAN) / _STD
        return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)


def _build(arch: str, dim: int) -> nn.Module:
    """The network of ``arch`` with random weights (they are loaded afterwards)."""
    if arch == "small_cnn":
        return SmallCNN(dim)
    if arch.startswith("torchvision:"):
        name = arch.removeprefix("torchvision:")
        try:
            models = importlib.import_module("torchvision.models")
        except Exception as exc:  # absent, or built for another torch
            raise ConfigError(
                f"image encoder {arch!r} needs a working torchvision: {exc}"
            ) from None
        if not hasattr(models, name):
            raise ConfigError(f"image encoder: torchvision has no model {name!r}")
        net: nn.Module = getattr(models, name)(weights=None)
        return net
    raise ConfigError(f"image encoder: unknown arch {arch!r} (small_cnn or torchvision:<name>)")
