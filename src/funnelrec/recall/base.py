"""``RecallChannel``: a stage that fetches up to ``k`` candidate items per query.

Contract (checked by tests/contracts for every registered channel): rows sorted by score
descending, no duplicate items in a row, exclusions honoured, at most ``k`` items, unknown
users (``user_idx == -1`` / empty history) handled by falling back or returning an empty row.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.data.dataset import Dataset
from funnelrec.stage import Params, Stage
from funnelrec.types import Candidates, Query

P = TypeVar("P", bound=Params)


class RecallChannel(Stage[P]):
    """Base class; subclasses implement ``fit`` and ``_retrieve``."""

    kind: ClassVar[str] = "recall"
    personalized: ClassVar[bool] = True

    def retrieve(self, query: Query, k: int) -> Candidates:
        """Top ``k`` candidates per query, excluding the query's exclusion lists."""
        self.check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._retrieve(query, k)

    @abstractmethod
    def _retrieve(self, query: Query, k: int) -> Candidates:
        """Top ``k`` candidates per query (``k >= 1``, the stage fitted)."""

    def upsert_items(self, dataset: Dataset, item_idx: npt.NDArray[np.int64]) -> None:
        """Hook called after the funnel's catalogue grew or changed (``Funnel.upsert_items``).

        ``dataset`` is the funnel's dataset with the updated item table and id map (new items
        have the highest dense ids and no interactions); ``item_idx`` ``[n]`` are the items
        added or changed. Channels that can serve new items (fresh, content/attribute-based,
        ANN) override it; the default does nothing, and the channel must then keep treating
        items outside its fitted catalogue as unknown.
        """
        return None

    @property
    def channel_name(self) -> str:
        return self.registered_name or type(self).__name__


def gather_scores(
    scores: npt.NDArray[np.floating[Any]] | sp.spmatrix | sp.sparray,
    rows: npt.NDArray[np.int64],
    items: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """``[N]`` entries ``scores[rows[n], items[n]]`` of a ``[B, n_items]`` score matrix
    (dense or sparse); items outside the matrix, missing sparse entries and non-finite
    scores give 0.

    The building block of a channel's ``score_items(query, candidates)``: its score of
    *every* candidate, found by it or not (a stacking ranker's feature)."""
    out = np.zeros(len(items), dtype=np.float32)
    ok = (items >= 0) & (items < scores.shape[1])
    if not ok.any():
        return out
    if sp.issparse(scores):
        picked = np.asarray(sp.csr_matrix(scores)[rows[ok], items[ok]]).ravel()
    else:
        picked = np.asarray(scores)[rows[ok], items[ok]]
    out[ok] = np.where(np.isfinite(picked), picked, 0.0)
    return out


def dense_topk(
    scores: npt.NDArray[np.floating[Any]], query: Query, k: int, channel: str
) -> Candidates:
    """Top ``k`` per row of a dense ``[B, n_items]`` score matrix, skipping exclusions.

    Entries that are ``-inf``/NaN (or excluded) are never returned.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    rows = ragged.row_ids(query.exclude_offsets)
    n_items = scores.shape[1]
    inside = query.exclude_items < n_items
    scores[rows[inside], query.exclude_items[inside]] = -np.inf
    scores[np.isnan(scores)] = -np.inf
    k_eff = min(k, n_items)
    if k_eff == 0:
        return Candidates.empty(scores.shape[0], channel)
    top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    return Candidates.from_dense(top.astype(np.int64), top_scores, channel)


def global_topk(
    ranked_items: npt.NDArray[np.int64],
    ranked_scores: npt.NDArray[np.floating[Any]],
    query: Query,
    k: int,
    channel: str,
) -> Candidates:
    """Top ``k`` of one global ranking (best first) for every query, skipping exclusions."""
    batch = query.batch_size
    max_excl = int(ragged.lengths(query.exclude_offsets).max(initial=0))
    head = min(len(ranked_items), k + max_excl)
    items = np.tile(ranked_items[:head], batch)
    scores = np.tile(np.asarray(ranked_scores[:head], dtype=np.float32), batch)
    offsets = np.arange(batch + 1, dtype=np.int64) * head
    banned = ragged.membership(offsets, items, query.exclude_offsets, query.exclude_items)
    cands = Candidates.from_flat(offsets, items, scores, channel).filter(~banned)
    return cands.truncate(k)
