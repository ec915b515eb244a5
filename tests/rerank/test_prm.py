"""prm: learns from list context, keeps the rules after it exact, saves and loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from funnelrec import ragged
from funnelrec.config import FunnelConfig
from funnelrec.context import FitContext as FunnelContext
from funnelrec.data.dataset import Dataset
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.models.prm import PRM
from funnelrec.pipeline import Funnel
from funnelrec.registry import RERANK
from funnelrec.train.losses import listwise_softmax
from funnelrec.types import Candidates, Query

N_ITEMS, N_USERS, LIST = 80, 300, 20


def tagged_world() -> tuple[Dataset, Dataset]:
    """Train part (5 cold items per user) and a valid part (one 'hot' item per user)."""
    rng = np.random.default_rng(0)
    hot = np.arange(0, N_ITEMS, 8)
    cold = np.setdiff1d(np.arange(N_ITEMS), hot)
    users = np.repeat(np.arange(N_USERS), 5)
    train_items = np.concatenate([rng.choice(cold, 5, replace=False) for _ in range(N_USERS)])
    items = pl.DataFrame(
        {
            "item_id": np.arange(N_ITEMS),
            "tags": [["hot" if i in hot else "cold"] for i in range(N_ITEMS)],
        }
    )
    frame = pl.DataFrame(
        {"user_id": users, "item_id": train_items, "timestamp": np.arange(len(users)) * 1.0}
    )
    valid_frame = pl.DataFrame(
        {
            "user_id": np.arange(N_USERS),
            "item_id": rng.choice(hot, N_USERS),
            "timestamp": np.full(N_USERS, 1e6),
        }
    )
    full = Dataset.from_frame(pl.concat([frame, valid_frame]), items=items)
    n = len(frame)
    return full.with_interactions(full.interactions[:n]), full.with_interactions(
        full.interactions[n:]
    )


def lists_with_one_hot(valid: Dataset) -> Any:
    """A 'ranker' that hides each user's valid item at a random position among cold items."""
    truth = valid.user_item

    def lists(query: Query) -> Candidates:
        rng = np.random.default_rng(int(query.user_idx.sum()))
        rows = []
        for u in query.user_idx:
            target = truth[u].indices[0] if truth[u].nnz else 1
            others = rng.choice(
                np.setdiff1d(np.arange(N_ITEMS), np.arange(0, N_ITEMS, 8)), LIST - 1, replace=False
            )
            rows.append(np.insert(others, rng.integers(LIST), target))
        items = np.asarray(rows, dtype=np.int64)
        scores = np.broadcast_to(-np.arange(LIST, dtype=np.float64), items.shape).copy()
        return Candidates.from_dense(items, scores, "ranker")

    return lists


def test_learns_what_the_ranker_order_misses() -> None:
    train, valid = tagged_world()
    lists = lists_with_one_hot(valid)
    prm = RERANK.create(
        "prm", {"epochs": 20, "dim": 16, "threads": 1, "lr": 0.01, "batch_size": 32}
    )
    prm.fit_in_funnel(train, FunnelContext(lists=lists, valid=valid))
    users = np.arange(N_USERS)
    query = train.query(users, 10)
    cands = lists(query)
    before = cands.dense(10)
    after = prm.rerank(query, cands, 10)
    t_off, t_items = (
        valid.user_item.indptr.astype(np.int64),
        valid.user_item.indices.astype(np.int64),
    )
    ndcg_before = metrics.ranking_metrics(before, t_off, t_items, ks=(10,))["ndcg@10"]
    ndcg_after = metrics.ranking_metrics(after.dense(10), t_off, t_items, ks=(10,))["ndcg@10"]
    assert ndcg_before < 0.4 and ndcg_after > 0.9, (ndcg_before, ndcg_after)
    assert "prm" in after.stage_scores and set(after.to_lists()[0]) <= set(cands.to_lists()[0])


def test_listwise_softmax_known_answer() -> None:
    logits = torch.tensor([[2.0, 0.0, -1e9], [1.0, 1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    want = -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    assert torch.isclose(listwise_softmax(logits, labels, mask), want)


def test_model_masks_padding_and_sees_the_whole_list() -> None:
    model = PRM(n_items=10, n_tags=3, n_score_feats=2, max_len=5, dim=8).eval()
    batch = {
        "items": torch.tensor([[1, 2, 3, 0, 0]]),
        "tags": torch.tensor([[[1], [2], [3], [0], [0]]]),
        "scores": torch.rand(1, 5, 2),
        "hist": torch.tensor([[4, 5, 0]]),
        "mask": torch.tensor([[True, True, True, False, False]]),
    }
    out = model(batch)
    assert out.shape == (1, 5) and bool((out[0, 3:] == -1e9).all())
    other = {**batch, "items": torch.tensor([[1, 2, 7, 0, 0]])}  # change item 3 only
    assert not torch.isclose(model(other)[0, 0], out[0, 0])  # item 1's score depends on the list


def test_rules_stay_exact_after_prm_in_a_funnel(world_split: Split, tmp_path: Path) -> None:
    config = FunnelConfig.model_validate(
        {
            "k": 10,
            "recall": {"total": 60, "channels": [{"name": "popular"}, {"name": "tag"}]},
            "rank": {"name": "passthrough", "keep": 40},
            "rerank": [
                {"name": "seen_filter"},
                {"name": "prm", "params": {"epochs": 2, "dim": 8, "threads": 1}},
                {
                    "name": "scatter",
                    "params": {"window": 3, "max_per_window": 1, "on_violation": "truncate"},
                },
                {
                    "name": "slots",
                    "params": {
                        "rules": [
                            {
                                "kind": "category",
                                "positions": [2],
                                "category": "Books",
                                "source": "catalogue",
                            }
                        ]
                    },
                },
            ],
        }
    )
    funnel = Funnel(config).fit(world_split.train, valid=world_split.valid)
    users = world_split.test_users()[:60]
    trace = funnel.run(world_split.test_query(users, 10))
    slate = trace.slate
    assert slate is not None
    cats = funnel.dataset.items["category"].to_numpy()
    names = [name for name, _ in trace.rerank_steps]
    scattered = trace.rerank_steps[names.index("scatter")][1]
    for row in scattered.to_lists():  # the window rule holds exactly on PRM's order
        c = cats[row]
        assert all(len(set(c[i : i + 3])) == len(c[i : i + 3]) for i in range(len(c)))
    for row in slate.to_lists():
        assert len(row) >= 2 and cats[row[1]] == "Books"  # the slot holds its type
    seen = world_split.test_query(users, 10)
    assert not ragged.membership(
        slate.offsets, slate.item_idx, seen.exclude_offsets, seen.exclude_items
    ).any()
    steps = funnel.run(world_split.test_query(users[:1], 10)).explain(0, funnel.dataset.item_ids)[
        "rerank"
    ]
    assert [s["reranker"] for s in steps] == ["seen_filter", "prm", "scatter", "slots"]
    funnel.save(tmp_path / "f")
    again = Funnel.load(tmp_path / "f").recommend(world_split.test_query(users, 10))
    np.testing.assert_array_equal(again.item_idx, slate.item_idx)
