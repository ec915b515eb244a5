"""Fixed-type slots: put a fresh / promoted / category item at chosen positions.

Each rule names 1-based positions and a kind. A slot takes the highest-ranked candidate that
fits the rule (moved, never duplicated); with ``source: catalogue`` a slot no candidate can
fill takes an item from the catalogue instead (newest fresh item, first item of the promoted
list, most popular item of the category), marked in ``reasons``. Slot items never come from
the query's exclusions. The other items keep their order around the slots.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, field_validator

from funnelrec import needs, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.errors import ConfigError
from funnelrec.ragged import BoolArray, IntArray
from funnelrec.registry import RERANK
from funnelrec.rerank._items import DAY, gather, item_column, pad, place, spread
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query


class _Rule(Params):
    """Shared rule fields: ``positions`` (1-based, distinct), ``source`` (``candidates``:
    only move items already in the list; ``catalogue``: fall back to the catalogue) and
    ``reason`` (text for the placed items; ``{position}`` becomes the slot's position)."""

    positions: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    reason: str | None = None

    @field_validator("positions")
    @classmethod
    def _distinct(cls, positions: list[int]) -> list[int]:
        if len(set(positions)) != len(positions):
            raise ValueError(f"positions repeat a value: {positions}")
        return positions


class FreshRule(_Rule):
    """``fresh``: items created within ``max_age_days`` before the request time."""

    kind: Literal["fresh"]
    max_age_days: float = Field(default=7.0, gt=0)
    source: Literal["candidates", "catalogue"] = "candidates"


class PromotedRule(_Rule):
    """``promoted``: items of the ``items`` list (external ids, in priority order)."""

    kind: Literal["promoted"]
    items: list[str | int] = Field(min_length=1)
    source: Literal["candidates", "catalogue"] = "catalogue"


class CategoryRule(_Rule):
    """``category``: items whose item-table ``column`` equals ``category``."""

    kind: Literal["category"]
    category: str
    column: str = "category"
    source: Literal["candidates", "catalogue"] = "candidates"


Rule = Annotated[FreshRule | PromotedRule | CategoryRule, Field(discriminator="kind")]


class SlotsParams(Params):
    """Parameters of ``slots``.

    Attributes:
        rules: slot rules, each ``{kind, positions, ...}`` with ``kind`` one of ``fresh``
            (``max_age_days``, default 7), ``promoted`` (``items``: external ids) or
            ``category`` (``category``, ``column`` default ``category``); every rule also
            takes ``source`` (``candidates`` or ``catalogue``; default ``catalogue`` for
            promoted, ``candidates`` otherwise) and ``reason``. A position belongs to one
            rule only.
    """

    rules: list[Rule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _one_rule_per_position(cls, rules: list[Rule]) -> list[Rule]:
        taken: set[int] = set()
        for rule in rules:
            clash = taken.intersection(rule.positions)
            if clash:
                raise ValueError(f"position {min(clash)} is used by two rules")
            taken.update(rule.positions)
        return rules


@RERANK.register("slots")
class Slots(Reranker[SlotsParams]):
    """Places rule items at fixed positions; everything else keeps its relative order."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = SlotsParams

    @classmethod
    def requires(cls, params: SlotsParams) -> tuple[needs.Need, ...]:
        """Real timestamps for fresh slots; the ``column`` of category slots."""
        out: list[needs.Need] = []
        for rule in params.rules:
            if isinstance(rule, FreshRule):
                out.append(needs.real_time("fresh slots (item ages in days)"))
            elif isinstance(rule, CategoryRule):
                out.append(needs.item_columns((rule.column,), "category slots", "column"))
        return tuple(out)

    example_params: ClassVar[dict[str, Any]] = {
        "rules": [
            {"kind": "fresh", "positions": [3, 8], "max_age_days": 60, "source": "catalogue"},
            {"kind": "category", "positions": [5], "category": "Books"},
        ]
    }

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Creation times, the fresh order, and per rule its eligible items and pool.

        Raises:
            ConfigError: naming an unknown promoted id, category or column.
        """
        rules = self.params.rules
        self.created_at_ = dataset.item_created_at.astype(np.float64)
        self.fresh_order_ = np.argsort(self.created_at_, kind="stable").astype(np.int64)
        self.eligible_ = np.zeros((len(rules), dataset.n_items), dtype=np.bool_)
        pools = [self._fit_rule(i, rule, dataset) for i, rule in enumerate(rules)]
        self.pool_offsets_, self.pool_items_ = ragged.from_lists(pools)
        return self

    def _fit_rule(self, i: int, rule: Rule, dataset: Dataset) -> IntArray:
        """Fill ``eligible_[i]``; return the rule's catalogue pool, best first."""
        if isinstance(rule, FreshRule):
            return np.zeros(0, dtype=np.int64)  # fresh pools depend on the request time
        if isinstance(rule, PromotedRule):
            pool = np.asarray([_item_index(dataset, ext) for ext in rule.items], dtype=np.int64)
            pool = pool[np.sort(np.unique(pool, return_index=True)[1])]
        else:
            values = item_column(dataset, rule.column, self.registered_name).cast(str)
            match = (values == rule.category).fill_null(False).to_numpy()
            if not match.any():
                raise ConfigError(f"rerank slots: no item has {rule.column} == {rule.category!r}")
            pool = np.flatnonzero(match)
            pool = pool[np.argsort(-dataset.item_popularity[pool], kind="stable")]
        self.eligible_[i, pool] = True
        return pool.astype(np.int64)

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        view = pad(candidates)
        excluded = ragged.membership(
            candidates.offsets, candidates.item_idx, query.exclude_offsets, query.exclude_items
        )
        banned = spread(view, excluded, False)
        slots = sorted(
            (p - 1, r) for r, rule in enumerate(self.params.rules) for p in rule.positions if p <= k
        )
        chosen = np.full((query.batch_size, len(slots)), -1, dtype=np.int64)
        moved = np.full_like(chosen, -1)
        used = banned.copy()
        rows = np.arange(query.batch_size)
        pools: dict[int, IntArray] = {}
        for s, (_, r) in enumerate(slots):
            fits = ~used & view.valid & self._eligible(r, view.items, query.now)
            col = fits.argmax(axis=1)
            has = fits[rows, col]
            chosen[has, s] = view.items[rows[has], col[has]]
            moved[has, s] = view.flat[rows[has], col[has]]
            used[rows[has], col[has]] = True
            if self.params.rules[r].source == "catalogue":
                if r not in pools:
                    pools[r] = self._allowed_pool(r, query, len(slots))
                _fill_from_pool(pools[r], chosen, s, ~has)
        reasons = [self._reason(r, p) for p, r in slots]
        positions = np.asarray([p for p, _ in slots], dtype=np.int64)
        fillers = view.valid & ~(used & ~banned)
        return place(candidates, view, fillers, positions, chosen, moved, reasons, k)

    def _eligible(self, r: int, items: IntArray, now: np.ndarray[Any, Any]) -> BoolArray:
        """``[B, N]`` which items fit rule ``r`` for each query."""
        rule = self.params.rules[r]
        if isinstance(rule, FreshRule):
            created = gather(self.created_at_, items, np.inf)
            oldest = now - rule.max_age_days * DAY
            fresh: BoolArray = (created <= now[:, None]) & (created >= oldest[:, None])
            return fresh
        return gather(self.eligible_[r], items, False)

    def _allowed_pool(self, r: int, query: Query, n_slots: int) -> IntArray:
        """``[B, h]`` catalogue pool of rule ``r`` with the query's exclusions blanked (``-1``).

        ``h`` = slots + longest exclusion list: enough for every slot to find an item
        whenever the pool has one (each row excludes or places at most that many)."""
        head = n_slots + int(ragged.lengths(query.exclude_offsets).max(initial=0))
        pool = self._pool(r, query.now, head)
        b, h = pool.shape
        banned = ragged.membership(
            np.arange(b + 1, dtype=np.int64) * h,
            np.maximum(pool, 0).ravel(),
            query.exclude_offsets,
            query.exclude_items,
        ).reshape(b, h)
        return np.where(banned, -1, pool)

    def _pool(self, r: int, now: np.ndarray[Any, Any], head: int) -> IntArray:
        """``[B, h]`` catalogue items for rule ``r``, best first, ``-1`` padded."""
        rule = self.params.rules[r]
        if isinstance(rule, FreshRule):
            created = self.created_at_[self.fresh_order_]
            hi = np.searchsorted(created, now, side="right")
            lo = np.searchsorted(created, now - rule.max_age_days * DAY, side="left")
            idx = hi[:, None] - 1 - np.arange(head)[None, :]
            return np.where(idx >= lo[:, None], self.fresh_order_[np.maximum(idx, 0)], -1)
        items = self.pool_items_[self.pool_offsets_[r] : self.pool_offsets_[r + 1]][:head]
        return np.broadcast_to(items, (len(now), len(items))).astype(np.int64)

    def _reason(self, r: int, position: int) -> str:
        rule = self.params.rules[r]
        default = f"{rule.kind} item (slot {{position}})"
        if isinstance(rule, CategoryRule):
            default = f"{rule.category} item (slot {{position}})"
        return (rule.reason or default).replace("{position}", str(position + 1))


def _item_index(dataset: Dataset, external: str | int) -> int:
    """Dense index of a promoted id; ``"12"`` and ``12`` both match either spelling."""
    for key in (external, str(external), *([int(external)] if str(external).isdigit() else [])):
        if key in dataset.item_ids:
            return dataset.item_ids.index(key)
    raise ConfigError(f"rerank slots: promoted item {external!r} is not in the catalogue")


def _fill_from_pool(pool: IntArray, chosen: IntArray, s: int, need: BoolArray) -> None:
    """Set ``chosen[b, s]`` for rows ``need`` to the first pool item of the row that no
    other slot holds (``pool [B, h]``, ``chosen [B, S]``, ``need [B]``)."""
    rows = np.flatnonzero(need)
    part = pool[rows]
    ok = (part >= 0) & ~(part[:, :, None] == chosen[rows][:, None, :]).any(axis=2)
    found = ok.any(axis=1)
    chosen[rows[found], s] = part[found, ok[found].argmax(axis=1)]
