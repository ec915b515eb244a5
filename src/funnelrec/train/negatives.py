"""Negative sampling: uniform or popularity^α, excluding each user's positives.

Collisions with positives are found with one ``searchsorted`` over the positives' sorted
``user * n_items + item`` keys and resampled for a few vectorised rounds; the rare pairs
still colliding afterwards are drawn exactly from the user's non-positive items.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec.ragged import IntArray

F64Array = npt.NDArray[np.float64]


class NegativeSampler:
    """Draws negatives with probability ∝ ``popularity ** alpha`` (``alpha = 0``: uniform).

    Args:
        n_items: catalogue size.
        positives: ``[n_users, n_items]`` CSR of each user's positives (``None``: no exclusion).
        popularity: ``[n_items]`` counts (needed when ``alpha != 0``).
        alpha: popularity exponent.
        max_rounds: vectorised rejection rounds before the exact fallback.
    """

    def __init__(
        self,
        n_items: int,
        positives: sp.csr_matrix | None = None,
        popularity: npt.ArrayLike | None = None,
        alpha: float = 0.0,
        max_rounds: int = 5,
    ) -> None:
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.n_items = n_items
        self.max_rounds = max_rounds
        self.prob = _sampling_prob(n_items, popularity, alpha)
        self._cdf = np.cumsum(self.prob)
        self._cdf[-1] = 1.0
        self._uniform = bool(np.all(self.prob == self.prob[0]))  # not per draw: O(n_items)
        self._positives = None if positives is None else sp.csr_matrix(positives)
        self._keys = np.zeros(0, dtype=np.int64)
        if self._positives is not None:
            coo = self._positives.tocoo()
            self._keys = np.unique(coo.row.astype(np.int64) * n_items + coo.col)

    def draw(self, size: int | tuple[int, ...], rng: np.random.Generator) -> IntArray:
        """Items drawn from the sampling distribution, without any exclusion."""
        if self._uniform:
            return rng.integers(0, self.n_items, size=size, dtype=np.int64)
        idx = np.searchsorted(self._cdf, rng.random(size), side="right")
        return np.minimum(idx, self.n_items - 1).astype(np.int64)

    def is_positive(self, users: IntArray, items: IntArray) -> npt.NDArray[np.bool_]:
        """Whether each ``(users[i], items[i])`` pair (any equal shapes) is a positive."""
        if len(self._keys) == 0:
            return np.zeros(np.shape(items), dtype=np.bool_)
        keys = users.astype(np.int64) * self.n_items + items
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.asarray(self._keys[pos] == keys)

    def sample(self, users: IntArray, n: int, rng: np.random.Generator) -> IntArray:
        """``[B, n]`` negatives for each user of ``users`` ``[B]``, never one of its positives
        (unless the user has interacted with every item)."""
        out = self.draw((len(users), n), rng)
        if self._positives is None:
            return out
        rows = np.broadcast_to(users[:, None], out.shape)
        bad = self.is_positive(rows, out)
        for _ in range(self.max_rounds):
            if not bad.any():
                return out
            out[bad] = self.draw(int(bad.sum()), rng)
            bad[bad] = self.is_positive(rows[bad], out[bad])
        for r, c in zip(*np.nonzero(bad), strict=True):
            out[r, c] = self._exact(int(users[r]), rng)
        return out

    def _exact(self, user: int, rng: np.random.Generator) -> int:
        """One negative for ``user`` drawn from its non-positive items (slow path)."""
        assert self._positives is not None
        row = self._positives.indices[
            self._positives.indptr[user] : self._positives.indptr[user + 1]
        ]
        p = self.prob.copy()
        p[row] = 0.0
        if p.sum() <= 0:
            return int(rng.integers(self.n_items))
        return int(rng.choice(self.n_items, p=p / p.sum()))


def _sampling_prob(n_items: int, popularity: npt.ArrayLike | None, alpha: float) -> F64Array:
    if alpha == 0.0 or popularity is None:
        if alpha != 0.0:
            raise ValueError("popularity sampling (alpha != 0) needs item popularity")
        return np.full(n_items, 1.0 / n_items)
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.shape != (n_items,):
        raise ValueError(f"popularity must have shape ({n_items},), got {pop.shape}")
    weight = np.power(np.maximum(pop, 0.0) + 1.0, alpha)
    return np.asarray(weight / weight.sum(), dtype=np.float64)
