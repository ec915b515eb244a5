"""Training examples for scorers and the batch iterators of the ranking losses."""

from __future__ import annotations

import numpy as np
import torch

from funnelrec import ragged
from funnelrec.batch import Batch
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.train.examples import impression_examples, prefix_queries, recall_examples
from funnelrec.train.rows import GroupBatches
from funnelrec.types import Candidates, Query


def test_prefix_queries_cut_histories(world: Dataset) -> None:
    offsets, items, ts = world.sequences
    users = np.array([3, 3, 10])
    query = prefix_queries(world, users, np.array([0, 4, 2]))
    assert query.history(0).tolist() == []
    assert query.history(1).tolist() == items[offsets[3] : offsets[3] + 4].tolist()
    assert query.now[1] == ts[offsets[3] + 4]  # the time of the first held-out item
    np.testing.assert_array_equal(query.exclude_items, query.history_items)


def test_recall_examples_label_next_items_among_recall_candidates(world_split: Split) -> None:
    data = world_split.train
    seen: list[Query] = []

    def retrieve(query: Query) -> Candidates:
        """Fake recall: items 0..59 for every query (a fixed exposure set) but history."""
        seen.append(query)
        items = np.tile(np.arange(60), query.batch_size)
        off = ragged.offsets_from_lengths(np.full(query.batch_size, 60))
        cands = Candidates.from_flat(off, items, -np.arange(len(items), dtype=float), "fake")
        return cands.excluding(query)

    ex = recall_examples(
        data, retrieve, cuts=2, horizon=1, max_neg=10, n_random=5, max_queries=10**6, seed=0
    )
    assert seen and sum(q.batch_size for q in seen) == ex.query.batch_size
    offsets, items, _ = data.sequences
    rows = ex.candidates.row_ids()
    for r in range(0, ex.query.batch_size, 97):
        user, n_hist = int(ex.query.user_idx[r]), len(ex.query.history(r))
        target = items[offsets[user] + n_hist]
        row_items = ex.candidates.item_idx[rows == r]
        row_labels = ex.labels[rows == r]
        assert set(row_items[row_labels > 0]) <= {target}
        assert (row_labels == 0).sum() <= 10 + 5  # capped recall negatives + random ones
        assert not set(row_items) & set(ex.query.history(r)) - {target}
    assert ex.labels.sum() > 0


def test_impression_examples_use_the_past_only(world_split: Split) -> None:
    data = world_split.train
    ex = impression_examples(data, None, max_queries=500, seed=0)
    assert ex.query.batch_size == 500
    for r in range(0, 500, 50):
        lo, hi = ex.query.history_offsets[r], ex.query.history_offsets[r + 1]
        assert np.all(ex.query.history_ts[lo:hi] < ex.query.now[r])
    assert 0 < ex.labels.mean() < 1


def test_group_batches_pair_positives_with_their_own_negatives() -> None:
    labels = torch.tensor([1, 0, 0, 1, 0, 0, 0, 1], dtype=torch.float32)
    group = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    sparse = torch.arange(8).unsqueeze(1)
    data = Batch(sparse, torch.zeros(8, 0), label=labels, group=group)
    batches = GroupBatches(data, batch_size=9, n_neg=2)
    out = next(batches(1, np.random.default_rng(0)))
    p = len(out["label"]) // 3
    assert out["label"][:p].eq(1).all() and out["label"][p:].eq(0).all()
    pos_groups = out["group"][:p].repeat_interleave(2)
    neg_groups = out["group"][p:]
    own = pos_groups == neg_groups
    assert own[pos_groups != 2].all()  # group 2 has a negative too
    assert own.all()
