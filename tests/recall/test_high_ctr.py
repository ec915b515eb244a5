"""High-CTR recall: Beta smoothing, prior fit, impressions vs feedback proxy, no leakage."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.errors import DataError
from funnelrec.recall.high_ctr import HighCtrRecall, beta_prior_moments
from funnelrec.types import Query

ITEMS = ["hit", "gem", "lucky", "dud"]
CATEGORY = ["pop", "jazz", "pop", "jazz"]
SHOWN = {"hit": (1000, 50), "gem": (40, 20), "lucky": (1, 1), "dud": (30, 1)}  # shows, clicks


def with_impressions(shown: dict[str, tuple[int, int]]) -> Dataset:
    """One click per item in the log; exposures as given (user 0, time 0)."""
    frame = pl.DataFrame({"user_id": [0] * 4, "item_id": ITEMS, "timestamp": [0.0] * 4})
    items = pl.DataFrame({"item_id": ITEMS, "category": CATEGORY})
    ds = Dataset.from_frame(frame, items=items)
    idx = [ITEMS.index(name) for name, (n, _) in shown.items() for _ in range(n)]
    clicked = [int(j < c) for _, (n, c) in shown.items() for j in range(n)]
    impressions = pl.DataFrame(
        {"user_idx": 0, "item_idx": idx, "timestamp": 0.0, "clicked": clicked},
        schema={"user_idx": pl.Int64, "item_idx": pl.Int64, "timestamp": pl.Float64,
                "clicked": pl.Int8},
    )  # fmt: skip
    return ds.replace(impressions=impressions)


def ranked(model: HighCtrRecall, k: int = 10) -> list[str]:
    items = model.retrieve(Query.from_lists([-1], [[]], k=k), k).to_lists()[0]
    return [ITEMS[i] for i in items]


def test_quality_beats_traffic_when_evidence_suffices() -> None:
    model = HighCtrRecall(min_impressions=1, prior=(1.0, 9.0)).fit(with_impressions(SHOWN))
    # raw CTR: lucky 1.0 > gem 0.5 > hit 0.05 > dud 0.03; smoothed: gem 21/50 first
    assert ranked(model) == ["gem", "lucky", "hit", "dud"]
    np.testing.assert_allclose(model.ctr_[:3], [51 / 1010, 21 / 50, 2 / 11])


def test_min_impressions_hides_thin_evidence() -> None:
    model = HighCtrRecall(min_impressions=10, prior=(1.0, 9.0)).fit(with_impressions(SHOWN))
    assert ranked(model) == ["gem", "hit", "dud"]


def test_per_category_puts_the_users_category_first() -> None:
    ds = with_impressions(SHOWN)
    model = HighCtrRecall(min_impressions=1, prior=(1.0, 9.0), per_category=True).fit(ds)
    q = Query.from_lists([0, -1], [[3], []], k=4, exclude=[[3], []])  # history: a jazz item
    rows = [[ITEMS[i] for i in r] for r in model.retrieve(q, 4).to_lists()]
    assert rows[0] == ["gem", "lucky", "hit"]  # jazz (gem) first; dud is excluded
    assert rows[1] == ["gem", "lucky", "hit", "dud"]


def test_method_of_moments_recovers_the_prior() -> None:
    rng = np.random.default_rng(0)
    shows = rng.integers(20, 200, 5000).astype(np.float64)
    clicks = rng.binomial(shows.astype(np.int64), rng.beta(2.0, 18.0, 5000)).astype(np.float64)
    alpha, beta = beta_prior_moments(clicks, shows)
    assert alpha / (alpha + beta) == pytest.approx(0.1, rel=0.05)
    assert alpha + beta == pytest.approx(20.0, rel=0.2)  # the raw rates alone would say ~16
    assert beta_prior_moments(np.array([1.0]), np.array([2.0])) == (1.0, 1.0)


def test_feedback_proxy_without_impressions() -> None:
    frame = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 1, 2],
            "item_id": ["a", "a", "a", "a", "b", "b"],
            "timestamp": [0.0] * 6,
            "rating": [5.0, 4.0, 4.0, 1.0, 5.0, 2.0],
            "like": [1.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        }
    )
    ratings = Dataset.from_frame(frame, feedback_cols=("rating",))
    model = HighCtrRecall(min_impressions=1, prior=(1.0, 1.0)).fit(ratings)
    np.testing.assert_allclose(model.ctr_, [4 / 6, 2 / 4])  # share of ratings >= 4
    likes = Dataset.from_frame(frame, feedback_cols=("rating", "like"))
    model = HighCtrRecall(min_impressions=1, prior=(1.0, 1.0)).fit(likes)
    np.testing.assert_allclose(model.ctr_, [2 / 6, 3 / 4])  # `like` is preferred
    with pytest.raises(DataError, match="no impressions"):
        HighCtrRecall().fit(Dataset.from_frame(frame))


def test_smoothed_ctr_tracks_the_worlds_true_ctr(world: Dataset) -> None:
    true_ctr = np.asarray(world.meta["true_ctr"])
    model = HighCtrRecall(impressions_match="all").fit(world)
    seen = model.shows_ >= model.params.min_impressions
    assert spearmanr(model.ctr_[seen], true_ctr[seen])[0] > 0.85


def test_smoothing_beats_raw_ctr_on_thin_evidence(world: Dataset) -> None:
    assert world.impressions is not None
    rng = np.random.default_rng(1)
    sample = world.impressions.filter(rng.random(world.impressions.height) < 0.05)
    model = HighCtrRecall(impressions_match="all").fit(world.replace(impressions=sample))
    true_ctr = np.asarray(world.meta["true_ctr"])
    thin = (model.shows_ >= 1) & (model.shows_ <= 10)
    assert thin.sum() >= 50
    raw = model.clicks_[thin] / model.shows_[thin]
    raw_error = np.abs(raw - true_ctr[thin]).mean()
    smooth_error = np.abs(model.ctr_[thin] - true_ctr[thin]).mean()
    assert smooth_error < 0.7 * raw_error


def test_held_out_clicks_are_not_counted(world_split: Split) -> None:
    train = world_split.train
    # the split already partitions impressions; "event" matching also guards data whose
    # impression log covers held-out periods (here: the whole world's log)
    assert train.impressions is not None and world_split.test.impressions is not None
    full_log = train.replace(impressions=train.impressions.vstack(world_split.test.impressions))
    model = HighCtrRecall().fit(full_log)
    assert model.clicks_.sum() == len(train)  # test/valid slates dropped
    leaky = HighCtrRecall(impressions_match="all").fit(full_log)
    assert leaky.clicks_.sum() > len(train)
    assert HighCtrRecall(impressions_match="all").fit(train).clicks_.sum() <= len(train)
