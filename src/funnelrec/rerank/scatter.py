"""Category scattering: at most ``m`` items of one category in any ``w`` consecutive positions.

Greedy and order-preserving: each position takes the highest-ranked remaining item whose
category is not already ``m`` times in the previous ``w - 1`` positions. The greedy loop runs
over positions (at most ``k``); each step is vectorised over the whole batch on ``[B, N]``
arrays. Categories are coded per row (``0..N-1``) so window counts are ``[B, N]`` too.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
from pydantic import Field

from funnelrec import needs
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import Padded, column_codes, gather, item_column, pad, take_order
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class ScatterParams(Params):
    """Parameters of ``scatter``.

    Attributes:
        window: ``w``, the number of consecutive positions the rule looks at.
        max_per_window: ``m``, the most items of one category allowed in any window.
        column: item-table column holding the category (items with a null value are
            never constrained).
        on_violation: what to do at a position no remaining item can fill without breaking
            the rule: ``relax`` places the best remaining item anyway, ``truncate`` ends
            the row's list there.
    """

    window: int = Field(default=5, ge=1)
    max_per_window: int = Field(default=2, ge=1)
    column: str = "category"
    on_violation: Literal["relax", "truncate"] = "relax"


@RERANK.register("scatter")
class Scatter(Reranker[ScatterParams]):
    """Spreads categories out so no ``w``-window holds more than ``m`` of one category."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = ScatterParams

    @classmethod
    def requires(cls, params: ScatterParams) -> tuple[needs.Need, ...]:
        """The item category ``column``."""
        return (needs.item_columns((params.column,), "categories to scatter", "column"),)

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Category code per item ``[n_items]`` (``-1`` = none)."""
        values = item_column(dataset, self.params.column, self.registered_name)
        self.category_codes_ = column_codes(values)
        return self

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        codes = gather(self.category_codes_, view.items, -1)
        order = self._greedy(view, _local_codes(codes), min(k, view.width))
        return take_order(candidates, order)

    def _greedy(self, view: Padded, local: IntArray, steps: int) -> IntArray:
        """Greedy fill of ``steps`` positions.

        Args:
            view: padded candidates ``[B, N]``.
            local: ``[B, N]`` per-row category code in ``0..N-1``, ``-1`` = unconstrained.
            steps: number of positions to fill.

        Returns:
            ``[B, steps]`` flat candidate positions, ``-1`` where nothing was placed.
        """
        b, n = view.flat.shape
        w, m = self.params.window, self.params.max_per_window
        rows = np.arange(b)
        code_col = np.where(local >= 0, local, n)
        # the greedy keeps the incoming order up to the first position where it breaks the
        # rule: place that common prefix at once and run the loop from there
        start = int(_rule_prefix(code_col, view.valid, w, m, n).min(initial=steps))
        avail = view.valid.copy()
        avail[:, :start] = False
        alive = np.ones(b, dtype=np.bool_)  # rows still filling (truncate stops a row)
        counts = np.zeros((b, n + 1), dtype=np.int32)  # window count per local code; n = none
        placed = np.full((b, steps), n, dtype=np.int64)  # local code placed at each position
        placed[:, :start] = code_col[:, :start]
        order = np.full((b, steps), -1, dtype=np.int64)
        order[:, :start] = view.flat[:, :start]
        for pos in range(max(start - w, 0), start):  # the loop drops pos - w first
            counts[rows, placed[:, pos]] += 1
        rows2 = rows[:, None]
        for pos in range(start, steps):
            if pos >= w:  # the item at pos - w leaves the window
                counts[rows, placed[:, pos - w]] -= 1
            counts[:, n] = 0
            fits = avail & (counts[rows2, code_col] < m)
            ok = fits.any(axis=1)
            pick = np.where(ok, fits.argmax(axis=1), avail.argmax(axis=1))
            if self.params.on_violation == "truncate":
                alive &= ok
            take = alive & avail[rows, pick]
            order[take, pos] = view.flat[rows[take], pick[take]]
            avail[rows[take], pick[take]] = False
            placed[take, pos] = code_col[rows[take], pick[take]]
            counts[rows[take], placed[take, pos]] += 1
        return order


def _rule_prefix(code_col: IntArray, valid: BoolArray, w: int, m: int, none: int) -> IntArray:
    """``[B]`` length of each row's leading run of valid items whose incoming order keeps
    at most ``m`` of a category in every window of ``w`` (``none`` = unconstrained)."""
    b, n = code_col.shape
    count = np.ones((b, n), dtype=np.int64)  # same-category items in the window ending at j
    for d in range(1, min(w, n)):
        count[:, d:] += code_col[:, d:] == code_col[:, :-d]
    bad = ~valid | ((count > m) & (code_col != none))
    prefix: IntArray = np.where(bad.any(axis=1), bad.argmax(axis=1), n).astype(np.int64)
    return prefix


def _local_codes(codes: IntArray) -> IntArray:
    """Per-row dense recoding of ``codes[B, N]`` into ``0..N-1`` (``-1`` stays ``-1``).

    The local code of a candidate is the column of the first candidate in its row with the
    same category, so per-row counts fit a ``[B, N]`` array whatever the catalogue size.
    """
    b, n = codes.shape
    width = int(codes.max(initial=-1)) + 2
    keys = np.arange(b, dtype=np.int64)[:, None] * width + (codes + 1)
    _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    local = (first[inverse] % n).reshape(b, n).astype(np.int64)
    return np.where(codes >= 0, local, -1)
