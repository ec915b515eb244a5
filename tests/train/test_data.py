"""Training batches: histories, head-item downsampling, batch contents."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec import ragged
from funnelrec.train.data import PairBatches, frequency_keep_prob, history_index
from funnelrec.train.negatives import NegativeSampler


def test_frequency_keep_prob_formula() -> None:
    pop = np.array([900.0, 90.0, 9.0, 1.0])
    keep = frequency_keep_prob(pop, 1e-2)
    f = pop / pop.sum()
    expected = np.minimum(1.0, np.sqrt(1e-2 / f) + 1e-2 / f)
    np.testing.assert_allclose(keep, expected)
    assert keep[0] == pytest.approx(np.sqrt(1e-2 / 0.9) + 1e-2 / 0.9)
    assert keep[-1] == 1.0
    np.testing.assert_array_equal(frequency_keep_prob(pop, None), 1.0)


SEQ_OFF = np.array([0, 4, 6], dtype=np.int64)  # user 0: items 10 11 12 13; user 1: 20 21
SEQ = np.array([10, 11, 12, 13, 20, 21], dtype=np.int64)


def histories(mode: str, positions: list[int], users: list[int], max_len: int) -> list[list[int]]:
    off, flat = history_index(
        SEQ_OFF,
        np.array(users),
        np.array(positions),
        max_len,
        mode,  # type: ignore[arg-type]
    )
    return [SEQ[flat[off[i] : off[i + 1]]].tolist() for i in range(len(users))]


def test_prefix_history() -> None:
    assert histories("prefix", [0, 2, 3, 1], [0, 0, 0, 1], 2) == [[], [10, 11], [11, 12], [20]]


def test_others_history() -> None:
    got = histories("others", [0, 2, 3, 1], [0, 0, 0, 1], 2)
    assert got == [[12, 13], [11, 13], [11, 12], [20]]


def test_pair_batches_cover_every_pair_once() -> None:
    batches = PairBatches(SEQ_OFF, SEQ, batch_size=4, max_history=3)
    seen = []
    for batch in batches(1, np.random.default_rng(0)):
        assert set(batch) == {"user", "item", "hist_items", "hist_offsets"}
        seen += list(zip(batch["user"].tolist(), batch["item"].tolist(), strict=True))
    assert sorted(seen) == [(0, 10), (0, 11), (0, 12), (0, 13), (1, 20), (1, 21)]


def test_pair_batches_negatives_and_downsampling() -> None:
    positives_off = ragged.row_ids(SEQ_OFF)
    import scipy.sparse as sp

    mat = sp.csr_matrix((np.ones(6), (positives_off, SEQ)), shape=(2, 30))
    keep = np.ones(30)
    keep[10] = 0.0  # always drop item 10
    batches = PairBatches(
        SEQ_OFF, SEQ, batch_size=8, keep_prob=keep,
        sampler=NegativeSampler(30, mat), n_neg=5,
    )  # fmt: skip
    (batch,) = list(batches(1, np.random.default_rng(0)))
    assert 10 not in batch["item"].tolist() and len(batch["item"]) == 5
    assert batch["neg"].shape == (5, 5)
    for u, negs in zip(batch["user"].tolist(), batch["neg"].tolist(), strict=True):
        assert not set(negs) & set(SEQ[SEQ_OFF[u] : SEQ_OFF[u + 1]].tolist())
