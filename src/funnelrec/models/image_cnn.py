"""``SmallCNN``: a compact convolutional image encoder (pure ``nn.Module``)."""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Three conv → ReLU → max-pool blocks, global average pooling, a linear projection.

    Input ``[B, 3, H, W]`` float images; output ``[B, dim]``.
    """

    def __init__(self, dim: int = 64, channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(width, dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(self.pool(self.features(images)).flatten(1))  # type: ignore[no-any-return]
