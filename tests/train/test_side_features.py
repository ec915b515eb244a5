"""Categorical encoders for side features (0 = missing or unseen)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnelrec.errors import ConfigError
from funnelrec.train.side_features import ItemVocab, auto_user_columns, encode_table, fit_vocab


def test_auto_user_columns_and_codes() -> None:
    users = pl.DataFrame(
        {
            "user_idx": [0, 1, 2],
            "gender": ["F", "M", None],
            "age": [20, 30, 20],
            "score": [0.1, 0.2, 0.3],
        }
    )
    cols = auto_user_columns(users)
    assert cols == ["gender", "age"]
    vocabs = [fit_vocab(users[c]) for c in cols]
    codes = encode_table(users, cols, vocabs)
    np.testing.assert_array_equal(codes, [[1, 1], [2, 2], [0, 1]])
    new = pl.DataFrame({"gender": ["X"], "age": [30]})
    np.testing.assert_array_equal(encode_table(new, cols, vocabs), [[0, 2]])


def test_item_vocab_round_trip_and_new_items() -> None:
    items = pl.DataFrame(
        {
            "category": ["a", "b", None],
            "tags": [["x", "y"], [], None],
            "vec": [[1.0, 2.0], None, [0.5, 0.5]],
        }
    )
    vocab = ItemVocab.fit(items, "vec", max_tags=1)
    cat, tags, content = vocab.encode(items)
    np.testing.assert_array_equal(cat, [1, 2, 0])
    np.testing.assert_array_equal(tags, [[1], [0], [0]])
    np.testing.assert_allclose(content, [[1, 2], [0, 0], [0.5, 0.5]])
    again = ItemVocab(**vocab.__dict__).encode(pl.DataFrame({"category": ["b"], "tags": [["y"]]}))
    assert again[0].tolist() == [2] and again[1].tolist() == [[2]]
    with pytest.raises(ConfigError, match="content column"):
        ItemVocab.fit(items, "nope", max_tags=1)
