"""Shared inputs of the contract suites: warm, cold, mixed and "a channel returns nothing"
query batches, and the row-by-row batch-invariance check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.registry import Registry
from funnelrec.types import Candidates, Query


def concat(a: Query, b: Query) -> Query:
    """Rows of ``a`` then rows of ``b``."""

    def cat(name: str) -> np.ndarray:  # type: ignore[type-arg]
        return np.concatenate([getattr(a, name), getattr(b, name)])

    def offsets(name: str) -> np.ndarray:  # type: ignore[type-arg]
        lens = [ragged.lengths(getattr(q, f"{name}_offsets")) for q in (a, b)]
        return ragged.offsets_from_lengths(np.concatenate(lens))

    return Query(
        user_idx=cat("user_idx"),
        history_offsets=offsets("history"),
        history_items=cat("history_items"),
        history_ts=cat("history_ts"),
        exclude_offsets=offsets("exclude"),
        exclude_items=cat("exclude_items"),
        k=a.k,
        now=cat("now"),
    )


@pytest.fixture(scope="session")
def batches(world_split: Split) -> dict[str, Query]:
    """``warm``: known users; ``cold``: unknown users (two without history, one with a
    two-item session); ``empty``: unknown users without history only (history-based
    channels such as item-CF return nothing for the whole batch); ``mixed``: interleaved."""
    warm = world_split.test_query(world_split.test_users()[:4], 10)
    now = float(warm.now.max())
    session = warm.history_items[:2]
    cold = Query(
        user_idx=np.full(3, -1, dtype=np.int64),
        history_offsets=np.array([0, 0, 0, 2], dtype=np.int64),
        history_items=session,
        history_ts=np.array([now - 120.0, now - 60.0]),
        exclude_offsets=np.array([0, 0, 0, 2], dtype=np.int64),
        exclude_items=session,
        k=10,
        now=np.full(3, now),
    )
    mixed = concat(warm, cold).select(np.array([0, 4, 1, 5, 2, 6, 3], dtype=np.int64))
    return {
        "warm": warm,
        "cold": cold,
        "empty": cold.select(np.array([0, 1], dtype=np.int64)),
        "mixed": mixed,
    }


BATCH_NAMES = ("warm", "cold", "empty", "mixed")


def select_rows(c: Candidates, rows: list[int]) -> Candidates:
    """Candidates of the given rows only (a smaller batch), every aligned array kept."""
    flat = np.concatenate([np.arange(c.offsets[r], c.offsets[r + 1], dtype=np.int64) for r in rows])
    lens = c.lengths()[np.asarray(rows, dtype=np.int64)]
    return dataclasses.replace(c.take(flat), offsets=ragged.offsets_from_lengths(lens))


def assert_same_row(batched: Candidates, i: int, alone: Candidates, what: str) -> None:
    """Row ``i`` of ``batched`` equals row 0 of ``alone``: the same items with scores within
    1e-6; the order may differ only between items whose scores tie."""
    assert alone.batch_size == 1, what
    b_items, b_scores = batched.row(i)
    a_items, a_scores = alone.row(0)
    assert len(b_items) == len(a_items), (
        f"{what}: {len(b_items)} items batched, {len(a_items)} alone"
    )
    assert set(b_items.tolist()) == set(a_items.tolist()), f"{what}: different items"
    np.testing.assert_allclose(b_scores, a_scores, atol=1e-6, err_msg=f"{what}: scores by position")
    ob, oa = np.argsort(b_items), np.argsort(a_items)
    np.testing.assert_allclose(b_scores[ob], a_scores[oa], atol=1e-6, err_msg=f"{what}: by item")
    if batched.channel_ranks is not None and alone.channel_ranks is not None:
        assert batched.channels == alone.channels, what
        lo = int(batched.offsets[i])
        np.testing.assert_array_equal(
            batched.channel_ranks[lo + ob], alone.channel_ranks[oa], err_msg=f"{what}: provenance"
        )


def assert_batch_invariant(run: Callable[[Query], Candidates], query: Query, what: str) -> None:
    """Row ``i`` of ``run(query)`` equals ``run(query.select([i]))`` for every row."""
    out = run(query)
    for i in range(query.batch_size):
        alone = run(query.select(np.array([i], dtype=np.int64)))
        assert_same_row(out, i, alone, f"{what}, row {i}")


def assert_scorer_invariant(
    run: Callable[[Query, Candidates], Candidates], query: Query, cands: Candidates, what: str
) -> None:
    """Row ``i`` of ``run(query, cands)`` equals ``run`` on row ``i`` of both alone."""
    out = run(query, cands)
    for i in range(query.batch_size):
        alone = run(query.select(np.array([i], dtype=np.int64)), select_rows(cands, [i]))
        assert_same_row(out, i, alone, f"{what}, row {i}")


def seeded_names(registry: Registry[Any]) -> list[str]:
    """Registered stages with a ``seed`` parameter (their fit must depend on it alone)."""
    return [n for n in registry.names() if "seed" in registry.get(n).params_model.model_fields]


def disturb_global_rngs() -> None:
    """Move torch's and numpy's global random state, as any earlier code in a process may:
    a stage fitted after this must give what it gave before (its ``seed`` decides)."""
    torch.manual_seed(987_654)
    torch.rand(1_000)
    np.random.seed(987_654)
