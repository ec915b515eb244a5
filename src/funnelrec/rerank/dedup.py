"""Dedup: drops repeated items and near-duplicate content (same normalised item key).

The key of every item (e.g. its title, lower-cased, without a "(Remastered)" suffix) is
turned into an integer code at fit time; at re-rank time one ``unique_within_rows`` pass
over the codes keeps the first — highest-ranked — item of each key in each row.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import polars as pl
from pydantic import field_validator

from funnelrec import needs, ragged
from funnelrec.context import FitContext
from funnelrec.data.dataset import Dataset
from funnelrec.registry import RERANK
from funnelrec.rerank._items import column_codes, gather, item_column
from funnelrec.rerank.base import Reranker
from funnelrec.stage import Params
from funnelrec.types import Candidates, Query

#: Trailing re-release markers: "(Remastered)", "[Deluxe Edition]", " - Deluxe Edition",
#: ": Special Edition", "(2nd edition)". Years such as "Toy Story (1995)" are kept.
DEFAULT_STRIP = (
    r"(?i)\s*(?:[(\[][^)\]]*|[-–:]\s*[^-–:]*?)"
    r"\b(?:edition|remaster(?:ed)?|version|deluxe|anniversary|remix)\b[^)\]]*[)\]]?\s*$"
)


class DedupParams(Params):
    """Parameters of ``dedup``.

    Attributes:
        key: item-table column whose equal (normalised) values mark duplicates, e.g.
            ``title``, ``series``, ``creator``; ``None`` dedups by item id only. Items with a
            null or empty key never collide with other items.
        lowercase: compare string keys case-insensitively.
        strip_pattern: regular expression (Rust ``regex`` syntax, as Polars uses) removed
            from string keys before comparing; ``None`` disables it. The default strips
            re-release suffixes such as "(Remastered)" or " - Deluxe Edition".
    """

    key: str | None = "title"
    lowercase: bool = True
    strip_pattern: str | None = DEFAULT_STRIP

    @field_validator("strip_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                pl.Series(["probe"]).str.replace_all(pattern, "")
            except pl.exceptions.ComputeError as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern


@RERANK.register("dedup")
class Dedup(Reranker[DedupParams]):
    """Keeps the first item of each id and each normalised key, in incoming order."""

    reads_channel_evidence: ClassVar[bool] = False

    params_model = DedupParams

    @classmethod
    def requires(cls, params: DedupParams) -> tuple[needs.Need, ...]:
        """The item ``key`` column (e.g. ``title``)."""
        if params.key is None:
            return ()
        return (needs.item_columns((params.key,), "duplicate keys", "key (or key = null)"),)

    def fit(self, dataset: Dataset, ctx: FitContext | None = None) -> Self:
        """Compute the key code of every item ``[n_items]`` (``-1`` = no key)."""
        p = self.params
        if p.key is None:
            self.key_codes_ = np.full(dataset.n_items, -1, dtype=np.int64)
            return self
        values = item_column(dataset, p.key, self.registered_name)
        if values.dtype == pl.Utf8 or values.dtype == pl.Categorical:
            values = self._normalise(values.cast(pl.Utf8))
        self.key_codes_ = column_codes(values)
        return self

    def _normalise(self, values: pl.Series) -> pl.Series:
        """Lower-case, strip the pattern, collapse whitespace; empty strings become null."""
        if self.params.lowercase:
            values = values.str.to_lowercase()
        if self.params.strip_pattern is not None:
            values = values.str.replace_all(self.params.strip_pattern, "")
        values = values.str.replace_all(r"\s+", " ").str.strip_chars()
        return pl.select(pl.when(values.str.len_chars() > 0).then(values)).to_series()

    def _rerank(self, query: Query, candidates: Candidates, k: int) -> Candidates:
        """Keep the first occurrence of each key per row, then cut to ``k``.

        Items without a key get a code of their own derived from their id, so the same pass
        also removes repeated ids.
        """
        codes = gather(self.key_codes_, candidates.item_idx, -1)
        n_codes = int(self.key_codes_.max(initial=-1)) + 1
        keys = np.where(codes >= 0, codes, n_codes + candidates.item_idx).astype(np.int64)
        keep = ragged.unique_within_rows(candidates.offsets, keys)
        return candidates.filter(keep).truncate(k)
