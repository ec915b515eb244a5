"""Dataset summary for the report: sizes, density, feedback columns, popularity curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from funnelrec.data.dataset import Dataset


@dataclass(frozen=True)
class DataSummary:
    """What the report says about the data.

    Attributes:
        popularity: ``[n_items]`` interaction counts sorted in descending order.
        per_user: ``[n_users]`` interactions per user.
    """

    name: str
    n_users: int
    n_items: int
    n_interactions: int
    feedback: tuple[str, ...]
    popularity: npt.NDArray[np.float64]
    per_user: npt.NDArray[np.float64]

    @property
    def density(self) -> float:
        return self.n_interactions / max(self.n_users * self.n_items, 1)

    def head_share(self, fraction: float) -> float:
        """Share of interactions that go to the top ``fraction`` most popular items."""
        top = max(int(np.ceil(fraction * self.n_items)), 1)
        return float(self.popularity[:top].sum() / max(self.popularity.sum(), 1.0))

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` lines of the summary table."""
        q = np.quantile(self.per_user, [0.5, 0.9]) if len(self.per_user) else np.zeros(2)
        return [
            ("dataset", self.name),
            ("users", f"{self.n_users:,}"),
            ("items", f"{self.n_items:,}"),
            ("interactions", f"{self.n_interactions:,}"),
            ("density", f"{self.density:.4%}"),
            ("interactions per user (median / p90)", f"{q[0]:.0f} / {q[1]:.0f}"),
            (
                "share of interactions on the top 1% / 10% items",
                f"{self.head_share(0.01):.1%} / {self.head_share(0.10):.1%}",
            ),
            ("items never interacted with", f"{int((self.popularity == 0).sum()):,}"),
            ("feedback columns", ", ".join(self.feedback) or "-"),
        ]


def summarise(dataset: Dataset) -> DataSummary:
    """Summary of ``dataset`` (all of it, before any split)."""
    pop = np.sort(dataset.item_popularity)[::-1]
    per_user = np.bincount(dataset.arrays.user_idx, minlength=dataset.n_users).astype(np.float64)
    return DataSummary(
        name=dataset.name,
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        n_interactions=len(dataset),
        feedback=dataset.feedback,
        popularity=pop,
        per_user=per_user,
    )
