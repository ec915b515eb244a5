"""Popular recall: plain counts, time decay, window and feedback weighting (known answers)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError, DataError
from funnelrec.recall.popular import PopularRecall
from funnelrec.types import Query

DAY = 86_400.0


@pytest.fixture(scope="module")
def log() -> Dataset:
    """a: 3 old clicks, no purchase; b: 2 recent clicks, 2 purchases; c: 1 click, 1 purchase."""
    frame = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 1, 2, 3],
            "item_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": [0.0, 0.0, 0.0, 100 * DAY, 100 * DAY, 99 * DAY],
            "purchase": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            "rating": [2.0, 2.0, 1.0, 5.0, 4.0, 3.0],
        }
    )
    return Dataset.from_frame(frame, feedback_cols=("purchase", "rating"))


def ranked(model: PopularRecall, ds: Dataset) -> list[str]:
    q = Query.from_lists([-1], [[]], k=10)
    items = model.retrieve(q, 10).to_lists()[0]
    return [str(ds.item_ids.ids[i]) for i in items]


def test_plain_counts_are_the_default(log: Dataset) -> None:
    model = PopularRecall().fit(log)
    assert ranked(model, log) == ["a", "b", "c"]
    assert model.ranked_scores_.tolist() == [3.0, 2.0, 1.0]


def test_half_life_and_window(log: Dataset) -> None:
    decayed = PopularRecall(half_life_days=10.0).fit(log)
    assert ranked(decayed, log) == ["b", "c", "a"]
    np.testing.assert_allclose(decayed.ranked_scores_[:2], [2.0, 0.5**0.1], rtol=1e-6)
    windowed = PopularRecall(window_days=30.0).fit(log)
    assert ranked(windowed, log) == ["b", "c"]


def test_feedback_weights_events(log: Dataset) -> None:
    purchases = PopularRecall(feedback="purchase").fit(log)
    assert ranked(purchases, log) == ["b", "c"]  # a was never bought
    assert purchases.ranked_scores_.tolist() == [2.0, 1.0]
    stars = PopularRecall(feedback="rating").fit(log)
    assert ranked(stars, log) == ["b", "a", "c"]  # 9 stars, 5, 3
    liked = PopularRecall(feedback="rating", feedback_min=4.0).fit(log)
    assert ranked(liked, log) == ["b"]


def test_feedback_errors_name_the_column(log: Dataset) -> None:
    with pytest.raises(DataError, match="'like'"):
        PopularRecall(feedback="like").fit(log)
    with pytest.raises(ConfigError, match="feedback_min"):
        PopularRecall(feedback_min=4.0)
