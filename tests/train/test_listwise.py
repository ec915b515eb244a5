"""The ``listwise`` loss of the CTR rankers: segment softmax, whole-list batches, NDCG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from funnelrec.batch import Batch
from funnelrec.errors import ConfigError
from funnelrec.registry import PRERANK, RANK
from funnelrec.train.listwise import ListBatches, list_ndcg
from funnelrec.train.losses import listwise_softmax, segment_listwise_softmax


def _lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


def test_known_answer_on_two_tiny_lists() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0, 0.0, 1.0])
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0])
    segment = torch.tensor([0, 0, 0, 1, 1])
    want = ((_lse(1, 2, 3) - 3) + (_lse(0, 1) - 0)) / 2  # 0.4076 and 1.3133
    got = segment_listwise_softmax(logits, labels, segment)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # the padded form (PRM's) gives the same value
    padded = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -5.0]])
    y = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    assert listwise_softmax(padded, y, mask).item() == pytest.approx(want, rel=1e-6)


def test_labels_are_normalised_per_list_and_lists_without_positive_are_left_out() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0, 5.0, 4.0])
    segment = torch.tensor([0, 0, 0, 1, 1])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    want = 0.5 * ((_lse(1, 2, 3) - 1) + (_lse(1, 2, 3) - 3))
    assert segment_listwise_softmax(logits, labels, segment).item() == pytest.approx(want)
    doubled = segment_listwise_softmax(logits, labels * 2, segment)
    assert doubled.item() == pytest.approx(want)
    per_list = segment_listwise_softmax(logits, labels, segment, per_list=True)
    assert per_list[0].item() == pytest.approx(want) and torch.isnan(per_list[1])


def test_gradient_pushes_the_positive_up_and_the_negatives_down() -> None:
    logits = torch.tensor([0.5, 2.0, -1.0, 0.3], requires_grad=True)
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0])
    segment_listwise_softmax(logits, labels, torch.zeros(4, dtype=torch.long)).backward()
    assert logits.grad is not None
    grad = logits.grad.numpy()
    assert grad[0] < 0  # descent raises the positive's score
    assert (grad[1:] > 0).all()
    assert grad.sum() == pytest.approx(0.0, abs=1e-6)  # softmax: scores only move relatively


def test_batch_composition_does_not_change_a_lists_loss() -> None:
    rng = np.random.default_rng(0)
    a, b, c = (torch.from_numpy(rng.normal(size=n).astype(np.float32)) for n in (6, 3, 9))
    ya = torch.tensor([0, 1, 0, 0, 1, 0], dtype=torch.float32)
    yb, yc = torch.tensor([1.0, 0, 0]), torch.zeros(9).index_fill(0, torch.tensor([4]), 1.0)
    first = segment_listwise_softmax(
        torch.cat([a, b]), torch.cat([ya, yb]), torch.tensor([0] * 6 + [1] * 3), per_list=True
    )
    second = segment_listwise_softmax(
        torch.cat([c, a]), torch.cat([yc, ya]), torch.tensor([0] * 9 + [1] * 6), per_list=True
    )
    assert first[0].item() == pytest.approx(second[1].item(), rel=1e-6)


def _batch(group: list[int], label: list[float]) -> Batch:
    n = len(group)
    return Batch(
        sparse=torch.arange(n).reshape(n, 1),
        dense=torch.zeros(n, 0),
        label=torch.tensor(label),
        group=torch.tensor(group),
    )


def test_list_batches_yield_whole_lists_once_per_epoch() -> None:
    # lists 0..4 (interleaved rows); list 3 has no positive and is left out
    group = [0, 1, 0, 2, 1, 3, 4, 4, 2, 0, 3, 4]
    label = [1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    data = _batch(group, [float(x) for x in label])
    seen: list[int] = []
    n_batches = 0
    for out in ListBatches(data, batch_size=4)(1, np.random.default_rng(3)):
        n_batches += 1
        rows = out["sparse"][:, 0].numpy()
        local = out["group"].numpy()
        orig = np.asarray(group)[rows]
        assert np.all(np.diff(local) >= 0)  # lists are contiguous, numbered 0..L-1
        for lst in np.unique(local):
            members = set(orig[local == lst].tolist())
            assert len(members) == 1
            (g,) = members
            assert sorted(rows[local == lst].tolist()) == [i for i, x in enumerate(group) if x == g]
        seen += rows.tolist()
    assert sorted(seen) == [i for i, g in enumerate(group) if g != 3]
    assert n_batches >= 2


def test_list_batches_reject_data_without_positive_lists() -> None:
    with pytest.raises(ValueError, match="positive"):
        ListBatches(_batch([0, 0, 1], [0.0, 0.0, 0.0]), 8)


def test_list_ndcg_known_answer() -> None:
    labels = np.array([0, 1, 0, 0, 0, 1, 0], dtype=np.float32)
    scores = np.array([3, 2, 1, 9, 3, 1, 3], dtype=np.float32)
    group = np.array([5, 5, 5, 7, 7, 7, 9])  # list 9 has no positive: left out
    want = (1 / math.log2(3) + 1 / math.log2(4)) / 2
    assert list_ndcg(labels, scores, group, k=10) == pytest.approx(want)
    assert list_ndcg(labels, scores, group, k=1) == 0.0


def test_bad_loss_is_rejected_in_one_line() -> None:
    with pytest.raises(ConfigError, match="loss") as err:
        RANK.create("ctr", {"loss": "listwize"})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="bce"):
        RANK.create("multitask", {"loss": "listwise"})
    with pytest.raises(ConfigError, match="bce"):
        PRERANK.create("light", {"loss": "listwise", "teacher": {"model": "fm"}})
