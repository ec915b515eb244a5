"""Item texts, PCA, vector columns and vector files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnelrec.content import (
    PCAReducer,
    item_texts,
    load_vectors,
    save_vectors,
    vector_column,
    with_vector_column,
)
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError


def test_item_texts_join_columns_and_skip_nulls() -> None:
    items = pl.DataFrame(
        {
            "title": ["Toy Story", None, "", "Heat"],
            "tags": [["Animation", "Comedy"], ["Drama"], None, []],
        }
    )
    assert item_texts(items, ["title", "tags"]) == [
        "Toy Story. Animation, Comedy",
        "Drama",
        "",
        "Heat",
    ]
    with pytest.raises(ConfigError, match="'plot'"):
        item_texts(items, ["title", "plot"])


def test_pca_recovers_a_low_rank_subspace() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T  # 2 orthonormal directions in 6-D
    coords = rng.normal(size=(200, 2)) * [3.0, 1.0]
    vectors = (coords @ basis + 0.5).astype(np.float32)
    pca = PCAReducer.fit(vectors, 2)
    reduced = pca.transform(vectors)
    assert reduced.shape == (200, 2)
    rebuilt = reduced @ pca.components + pca.mean
    np.testing.assert_allclose(rebuilt, vectors, atol=1e-4)
    assert reduced[:, 0].var() > reduced[:, 1].var()  # first component: largest variance
    with pytest.raises(ConfigError, match="pca_dim 7"):
        PCAReducer.fit(vectors, 7)


def _tiny_dataset() -> Dataset:
    frame = pl.DataFrame({"user_id": [1, 1, 2], "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]})
    return Dataset.from_frame(frame)


def test_vector_column_round_trip_with_missing_rows() -> None:
    ds = _tiny_dataset()
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = with_vector_column(ds, vectors, "content", valid=np.array([True, False, True]))
    assert out.items["content"].dtype == pl.List(pl.Float32)
    values, valid = vector_column(out.items, "content")
    assert valid.tolist() == [True, False, True]
    np.testing.assert_array_equal(values, [[0, 1], [0, 0], [4, 5]])
    with pytest.raises(DataError, match="2 vectors for 3 items"):
        with_vector_column(ds, vectors[:2])
    with pytest.raises(DataError, match="'nope'"):
        vector_column(out.items, "nope")
    ragged_rows = pl.DataFrame({"v": [[1.0, 2.0], [1.0]]})
    with pytest.raises(DataError, match="lengths"):
        vector_column(ragged_rows, "v")


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_save_and_load_vectors(tmp_path: Path, suffix: str) -> None:
    vectors = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    path = save_vectors(tmp_path / f"v{suffix}", ["a", "b", "c", "d", "e"], vectors)
    ids, loaded = load_vectors(path)
    np.testing.assert_array_equal(np.asarray(loaded), vectors)
    assert ids == (None if suffix == ".npy" else ["a", "b", "c", "d", "e"])
