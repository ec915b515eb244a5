"""``RecallChannel``: a stage that fetches up to ``k`` candidate items per query.

Contract (checked by tests/contracts for every registered channel): rows sorted by score
descending, no duplicate items in a row, exclusions honoured, at most ``k`` items, unknown
users (``user_idx == -1`` / empty history) handled by falling back or returning an empty row.
"""

from __future__ import annotations

import functools
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
    """Base class; subclasses implement ``fit`` and ``_retrieve``.

    Attributes:
        personalized: ``False`` for channels whose lists do not depend on the user
            (popular, fresh, high-CTR): the same ranking for every query, minus exclusions.
    """

    kind: ClassVar[str] = "recall"
    personalized: ClassVar[bool] = True

    def retrieve(self, query: Query, k: int) -> Candidates:
        """Top ``k`` candidates per query, excluding the query's exclusion lists.

        Args:
            query: ``B`` queries (history, exclusions, request time).
            k: most items per row (``>= 1``).

        Returns:
            ``B`` ragged rows of at most ``k`` distinct items, scores descending, provenance
            ``channel_name``; a row may be empty (e.g. an unknown user).

        Raises:
            NotFittedError: before ``fit``/``load``.
            ValueError: ``k < 1``.
        """
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
        """The provenance name of its candidates: the registered name (else the class's)."""
        return self.registered_name or type(self).__name__

    @functools.cached_property
    def score_memo(self) -> ScoreMemo:
        """Channels with ``score_items`` keep their last retrieval's scores here."""
        return ScoreMemo()


class MatrixScoredChannel(RecallChannel[P]):
    """A channel whose scores are a ``[B, n_items]`` matrix (``score_matrix``): it can score
    any candidate (``score_items``, the stacking ranker's ``cs:`` feature), and the matrix of
    a retrieval is handed to the ``score_items`` call that follows for the same queries."""

    @abstractmethod
    def score_matrix(self, query: Query) -> Any:
        """``[B, n_items]`` scores (dense array or sparse matrix)."""

    def score_items(self, query: Query, candidates: Candidates) -> npt.NDArray[np.float32]:
        """``[N]`` the channel's score of every candidate (0 where it has none)."""
        scores = self.score_memo.take(query)
        if scores is None:
            scores = self.score_matrix(query)
        return gather_scores(scores, candidates.row_ids(), candidates.item_idx)

    def retrieval_scores(self, query: Query) -> Any:
        """``score_matrix(query)``, remembered for the ``score_items`` call that follows."""
        scores = self.score_matrix(query)
        self.score_memo.put(query, scores)
        return scores


class ScoreMemo:
    """The score matrix a channel computed in ``retrieve``, handed once to the
    ``score_items`` call that follows for the same queries (the funnel's annotate step
    scores the merged candidates right after retrieval): one computation per batch, not two.

    A query matches when it carries the very same history, user and time arrays (a query
    with other exclusions still matches: they never change a score matrix). A channel
    calls ``clear`` whenever its fitted state changes.
    """

    def __init__(self) -> None:
        self._entry: tuple[Query, Any] | None = None

    def put(self, query: Query, scores: Any) -> None:
        """Remember ``scores`` (``[B, n_items]``) computed for ``query``'s ``B`` rows."""
        self._entry = (query, scores)

    def take(self, query: Query) -> Any | None:
        """The remembered matrix if it was computed for ``query``'s inputs (then forgotten)."""
        entry, self._entry = self._entry, None
        if entry is None:
            return None
        old, scores = entry
        fields = ("user_idx", "history_offsets", "history_items", "history_ts", "now")
        same = all(getattr(old, f) is getattr(query, f) for f in fields)
        return scores if same else None

    def clear(self) -> None:
        """Forget the remembered matrix."""
        self._entry = None


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
    if sp.issparse(scores) and len(rows) > 1 and np.all(rows[1:] >= rows[:-1]):
        csr = sp.csr_matrix(scores)  # rows grouped (candidates): one ragged lookup
        csr.sum_duplicates()
        offsets = ragged.offsets_from_row_ids(rows[ok], csr.shape[0])
        indptr = csr.indptr.astype(np.int64)
        found, pos = ragged.find(offsets, items[ok], indptr, csr.indices.astype(np.int64))
        picked = np.where(found, csr.data[pos] if len(csr.data) else 0.0, 0.0)
    elif sp.issparse(scores):
        picked = np.asarray(sp.csr_matrix(scores)[rows[ok], items[ok]]).ravel()
    else:
        picked = np.asarray(scores)[rows[ok], items[ok]]
    out[ok] = np.where(np.isfinite(picked), picked, 0.0)
    return out


def dense_topk(
    scores: npt.NDArray[np.floating[Any]], query: Query, k: int, channel: str
) -> Candidates:
    """Top ``k`` per row of a dense ``[B, n_items]`` score matrix, skipping exclusions.

    Entries that are ``-inf``/NaN (or excluded) are never returned; ties as in ``top_entries``.

    Args:
        scores: ``[B, n_items]`` score of every item for every query (not modified).
        query: the ``B`` queries (their ragged exclusions are applied).
        k: most items per row.
        channel: provenance name of the candidates.

    Returns:
        ``B`` rows of at most ``k`` items, scores descending.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    rows = ragged.row_ids(query.exclude_offsets)
    n_items = scores.shape[1]
    inside = query.exclude_items < n_items
    scores[rows[inside], query.exclude_items[inside]] = -np.inf
    scores[np.isnan(scores)] = -np.inf
    return top_entries(scores, k, channel)


def top_entries(scores: npt.NDArray[np.floating[Any]], k: int, channel: str) -> Candidates:
    """The ``k`` best finite entries of each row of ``scores`` ``[B, n_items]`` (``-inf``: not
    a candidate), best first. Ties are broken by ascending item, at the cut too, so a row's
    answer depends on that row alone. Linear in ``B x n_items`` (one partition per row, no
    full sort); only the kept ``B x k`` entries are sorted."""
    batch, n_items = scores.shape
    k = min(k, n_items)
    if k == 0:
        return Candidates.empty(batch, channel)
    keep = top_mask(scores, k)
    flat = np.flatnonzero(keep)
    rows, items = np.divmod(flat, n_items)
    values = scores.ravel()[flat].astype(np.float32)
    offsets = ragged.offsets_from_row_ids(rows, batch)
    order = ragged.sort_within_rows(offsets, values)
    return Candidates.from_flat(offsets, items[order], values[order], channel)


def top_mask(
    scores: npt.NDArray[np.floating[Any]], k: int, keep_ties: bool = False
) -> npt.NDArray[np.bool_]:
    """``[B, n]`` mask of the ``k`` best finite entries of each row of ``scores`` ``[B, n]``
    (``-inf`` and NaN: not candidates). Among entries tied at the cut the lowest columns are
    kept (exactly ``k``), or with ``keep_ties`` all of them; either way a row's mask depends
    on that row alone. One partition per row; the tie pass runs only on rows with ties."""
    if np.isnan(scores).any():  # NaN is not a candidate either
        scores = np.where(np.isnan(scores), -np.inf, scores)
    keep = scores > -np.inf
    if k < scores.shape[1]:
        # k-th largest, selected on the negated scores: rows are mostly -inf (no score),
        # and introselect is several times slower picking index n-k above a run of equal
        # values than picking k-1 below it (measured on served item-CF blocks)
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
        keep &= scores >= kth
        over = np.flatnonzero(keep.sum(axis=1) > k) if not keep_ties else np.zeros(0, np.int64)
        if len(over):
            tie = scores[over] == kth[over]
            room = k - (scores[over] > kth[over]).sum(axis=1, keepdims=True)
            keep[over] &= ~tie | (np.cumsum(tie, axis=1) <= room)
    return keep


def global_topk(
    ranked_items: npt.NDArray[np.int64],
    ranked_scores: npt.NDArray[np.floating[Any]],
    query: Query,
    k: int,
    channel: str,
) -> Candidates:
    """Top ``k`` of one global ranking (best first) for every query, skipping exclusions.

    Args:
        ranked_items: ``[n]`` items, best first.
        ranked_scores: ``[n]`` their scores.
        query: the ``B`` queries (their ragged exclusions are applied).
        k: most items per row.
        channel: provenance name of the candidates.

    Returns:
        ``B`` rows: the first ``k`` of ``ranked_items`` not excluded for that query.
    """
    batch = query.batch_size
    max_excl = int(ragged.lengths(query.exclude_offsets).max(initial=0))
    head = min(len(ranked_items), k + max_excl)
    items = np.tile(ranked_items[:head], batch)
    scores = np.tile(np.asarray(ranked_scores[:head], dtype=np.float32), batch)
    offsets = np.arange(batch + 1, dtype=np.int64) * head
    banned = ragged.membership(offsets, items, query.exclude_offsets, query.exclude_items)
    cands = Candidates.from_flat(offsets, items, scores, channel).filter(~banned)
    return cands.truncate(k)
