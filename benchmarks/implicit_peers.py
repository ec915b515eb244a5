"""Peers from the ``implicit`` library (ALS, BPR) as ``RecommendFn``s for the project evaluator.

``implicit`` is a runtime dependency of funnelrec (the ``als`` channel); the peers here are
benchmark-only code. A peer is fitted on the data it is given (``Split.history`` in
``embedding.py``: train + validation, the same test-time history funnelrec's channels see) and
recommends from its own user factors, filtering the query's exclusions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.types import Candidates, Query

Peer = Callable[[Query], Candidates]


def fit_peer(name: str, data: Dataset, params: dict[str, Any], threads: int) -> Peer:
    """Fit ``implicit-als`` / ``implicit-bpr`` on ``data``; returns its recommend function.

    ``implicit-bpr`` fits on one thread whatever ``threads`` says: its multi-threaded SGD is
    Hogwild (threads race on shared rows), so its factors, and the row, would differ run to run.
    """
    matrix = data.user_item.astype(np.float32)
    n_threads = 1 if name == "implicit-bpr" else threads
    common = {"num_threads": n_threads, "random_state": params.get("seed", 0)}
    rest = {k: v for k, v in params.items() if k != "seed"}
    model: Any
    if name == "implicit-als":
        model = AlternatingLeastSquares(**common, **rest)
    elif name == "implicit-bpr":
        model = BayesianPersonalizedRanking(**common, **rest)
    else:
        raise ValueError(f"unknown peer {name!r}")
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    return lambda query: _recommend(model, matrix, query)


def _recommend(model: Any, matrix: sp.csr_matrix, query: Query) -> Candidates:
    """Top ``query.k`` from the model's own user factors, exclusions filtered."""
    users = query.user_idx
    known = np.flatnonzero(users >= 0)
    n_excl = int(ragged.lengths(query.exclude_offsets).max(initial=0))
    n = min(query.k + n_excl, matrix.shape[1])
    ids = np.full((query.batch_size, n), -1, dtype=np.int64)
    scores = np.full((query.batch_size, n), -np.inf, dtype=np.float32)
    if len(known):
        found, sc = model.recommend(
            users[known], matrix[users[known]], N=n, filter_already_liked_items=False
        )
        ids[known], scores[known] = found, sc
    cands = Candidates.from_dense(ids, scores, "peer")
    banned = ragged.membership(
        cands.offsets, cands.item_idx, query.exclude_offsets, query.exclude_items
    )
    return cands.filter(~banned).truncate(query.k)
