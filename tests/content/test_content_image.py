"""Image encoder over local CNN weights, on images the test draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from funnelrec.content import VectorCache, create_encoder, extract
from funnelrec.content.image import MissingWeightsError
from funnelrec.errors import ConfigError
from funnelrec.models.image_cnn import SmallCNN


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cnn") / "small_cnn.pt"
    torch.save(SmallCNN(dim=16).state_dict(), path)
    return path


def square(colour: tuple[int, int, int], size: int = 48, shift: int = 0) -> Image.Image:
    """A coloured square on a grey background."""
    pixels = np.full((size, size, 3), 128, dtype=np.uint8)
    pixels[8 + shift : 40 + shift, 8 + shift : 40 + shift] = colour
    return Image.fromarray(pixels)


def test_missing_weights_are_named() -> None:
    with pytest.raises(MissingWeightsError, match=r"weights file '/nowhere/resnet\.pt'"):
        create_encoder("cnn", {"weights": "/nowhere/resnet.pt"})


def test_wrong_weights_and_unknown_arch_are_rejected(weights: Path) -> None:
    with pytest.raises(ConfigError, match="does not fit"):
        create_encoder("cnn", {"weights": str(weights), "dim": 8})
    with pytest.raises(ConfigError, match="unknown arch 'vgg'"):
        create_encoder("cnn", {"weights": str(weights), "arch": "vgg"})


def test_encodes_paths_and_pil_images_alike(weights: Path, tmp_path: Path) -> None:
    enc = create_encoder("cnn", {"weights": str(weights), "dim": 16, "size": 32})
    red, red2, blue = square((220, 30, 30)), square((200, 40, 40), shift=2), square((30, 30, 220))
    red.save(tmp_path / "red.png")
    vectors = enc.encode([red, tmp_path / "red.png", red2, blue])
    assert vectors.shape == (4, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # PNG is lossless
    dist = np.linalg.norm(vectors - vectors[0], axis=1)
    assert dist[2] < dist[3]  # a similar red square is nearer than a blue one


def test_image_cache_keys_on_content_not_path(weights: Path, tmp_path: Path) -> None:
    enc = create_encoder("cnn", {"weights": str(weights), "dim": 16, "size": 32})
    cache = VectorCache(tmp_path / "cache", enc.fingerprint, enc.dim)
    paths = []
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        paths.append(tmp_path / f"img{i}.png")
        square(colour).save(paths[-1])
    first, report = extract(paths, enc, cache)
    assert report.encoded == 3
    copy = tmp_path / "copy_of_img1.png"
    copy.write_bytes(paths[1].read_bytes())
    square((9, 9, 9)).save(paths[2])  # changed in place
    second, report2 = extract([paths[0], copy, paths[2]], enc, cache)
    assert (report2.encoded, report2.cached) == (1, 2)
    np.testing.assert_array_equal(second[:2], first[:2])
    assert not np.allclose(second[2], first[2])
