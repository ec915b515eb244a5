"""Ground truth of the synthetic world for the simulator: who clicks what, where.

The latent catalogue and population are rebuilt exactly as ``funnelrec.data.synthetic.generate``
draws them (same seed, same order of draws), so dense ids match the generated dataset's:
item ``j`` is ``cat[j]``, user ``u`` is ``pop[u]``.

Click model of a shown item ``i`` at 0-based position ``p`` for user ``u``::

    P(click) = min(1, scale * examine(p) * quality[i] * affinity[u, i])
    examine(p) = 1 / (1 + p) ** position_exponent            (position bias)
    affinity[u, i] = floor + (1 - floor) * w[u, category(i)] / max_c w[u, c]

with ``w`` the user's interest mixture weights over categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec.data.synthetic.world import WorldSpec, make_catalogue, make_population

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class World:
    """Truth arrays: ``quality [n_items]``, ``category [n_items]``, ``weights [n_users, n_cat]``."""

    quality: F64
    category: npt.NDArray[np.int64]
    weights: F64
    user_width: int
    item_width: int

    @classmethod
    def generate(cls, n_users: int, n_items: int, n_interactions: int, seed: int) -> World:
        spec = WorldSpec()
        rng = np.random.default_rng(seed)
        cat = make_catalogue(n_items, spec, rng)
        pop = make_population(n_users, n_interactions, cat, spec, rng)
        weights = np.zeros((n_users, spec.n_categories))
        rows = np.repeat(np.arange(n_users), pop.interests.shape[1])
        flat = pop.interests.ravel()
        ok = flat >= 0
        np.add.at(weights, (rows[ok], flat[ok]), pop.interest_weight.ravel()[ok])
        return cls(
            quality=cat.quality,
            category=cat.category,
            weights=weights,
            user_width=max(4, len(str(n_users - 1))),
            item_width=max(4, len(str(n_items - 1))),
        )

    def user_id(self, u: int) -> str:
        return f"u{u:0{self.user_width}d}"

    def item_index(self, item_id: str) -> int:
        return int(item_id[1:])

    def click_probability(
        self,
        user: int,
        items: npt.NDArray[np.int64],
        scale: float,
        exponent: float,
        floor: float,
    ) -> F64:
        """``[len(items)]`` click probabilities of a slate shown to ``user`` in this order."""
        w = self.weights[user]
        affinity = floor + (1 - floor) * w[self.category[items]] / max(w.max(), 1e-12)
        examine = 1.0 / (1.0 + np.arange(len(items))) ** exponent
        prob: F64 = np.minimum(scale * examine * self.quality[items] * affinity, 1.0)
        return prob
