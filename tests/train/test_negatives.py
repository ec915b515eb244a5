"""Negative sampling never returns a user's positives and follows popularity^α."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from funnelrec.train.negatives import NegativeSampler


def random_positives(n_users: int, n_items: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < rng.uniform(0.05, 0.95, size=(n_users, 1))
    return sp.csr_matrix(dense.astype(np.float32))


def test_negatives_never_positive() -> None:
    positives = random_positives(50, 40, seed=1)
    popularity = np.asarray(positives.sum(axis=0)).ravel()
    users = np.repeat(np.arange(50, dtype=np.int64), 20)
    rng = np.random.default_rng(0)
    for alpha in (0.0, 0.75):
        sampler = NegativeSampler(40, positives, popularity, alpha, max_rounds=2)
        neg = sampler.sample(users, 8, rng)
        assert neg.dtype == np.int64 and neg.shape == (len(users), 8)
        dense = positives.toarray().astype(bool)
        assert not dense[users[:, None], neg].any()


def test_is_positive_matches_matrix() -> None:
    positives = random_positives(10, 12, seed=3)
    sampler = NegativeSampler(12, positives)
    users = np.repeat(np.arange(10), 12)
    items = np.tile(np.arange(12), 10)
    expected = positives.toarray().astype(bool).ravel()
    np.testing.assert_array_equal(sampler.is_positive(users, items), expected)


def test_popularity_sampling_follows_alpha() -> None:
    popularity = np.array([1000.0, 100.0, 10.0, 0.0])
    sampler = NegativeSampler(4, None, popularity, alpha=1.0)
    draws = sampler.draw(200_000, np.random.default_rng(0))
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, sampler.prob, atol=0.005)
    assert freq[0] > 0.85
    uniform = NegativeSampler(4).draw(40_000, np.random.default_rng(1))
    np.testing.assert_allclose(np.bincount(uniform) / 40_000, 0.25, atol=0.01)
