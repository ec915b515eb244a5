"""Head-bias metrics on a hand-made example."""

from __future__ import annotations

import numpy as np
import pytest

from funnelrec.eval.head_bias import head_bias_metrics, head_mask


def test_head_mask_keeps_ties() -> None:
    pop = np.array([10.0, 5, 5, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(head_mask(pop, 0.1), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(head_mask(pop, 0.2), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])


def test_head_bias_metrics_known_answer() -> None:
    pop = np.arange(100, 0, -1).astype(float)  # item 0 most popular; top 20% = items 0..19
    topk = np.array([[0, 50, 5], [60, 61, -1]])
    truth_off = np.array([0, 2, 3])
    truth = np.array([50, 1, 70])  # user 0: tail 50 (hit) + head 1; user 1: tail 70 (miss)
    out = head_bias_metrics(topk, pop, truth_off, truth, k=3)
    assert out["head1_share@3"] == pytest.approx(1 / 5)  # item 0 only
    assert out["head10_share@3"] == pytest.approx(2 / 5)  # items 0 and 5
    assert out["coverage@3"] == pytest.approx(5 / 100)
    assert out["tail_recall@3"] == pytest.approx((1.0 + 0.0) / 2)
