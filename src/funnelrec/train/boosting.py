"""Early stopping for gradient-boosted rankers that does not stop on a noisy spike.

LightGBM's own rule (``lgb.early_stopping(patience)``) keeps the single best validation
round and stops ``patience`` rounds after it. A ranker validated on one held-out item per
user has a noisy curve (NDCG@10 over ~1k users moves by ~0.005 round to round): a spike in
the first rounds followed by a slow climb stops it after a few dozen trees, and which spike
comes first depends on the last bits of its features (a different BLAS, another seed).

``SmoothedEarlyStopping`` watches the centred moving average of the validation metric over
``window`` rounds, keeps the round where that average peaks, and stops only when it has not
improved for ``max(patience, best round)`` rounds: the longer a model has kept improving,
the longer a dip it may sit out. ``window=1`` with a large ``patience`` is close to
LightGBM's rule (which waits a fixed ``patience``).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np


class SmoothedEarlyStopping:
    """A LightGBM callback: the best round of the smoothed validation curve.

    After ``lgb.train(..., callbacks=[stop])``: ``stop.best_iteration`` (1-based rounds to
    keep), ``stop.best_smoothed`` (the moving average there), ``stop.best_raw`` (the
    metric at that round), ``stop.curve`` (the raw metric of every round trained).
    Watches the first validation set's ``metric`` (e.g. ``"ndcg@10"``); higher is better.
    """

    order = 30  # after LightGBM's own evaluation callbacks

    def __init__(self, metric: str, window: int = 21, patience: int = 50) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of rounds, got {window}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1 round, got {patience}")
        self.metric, self.window, self.patience = metric, window, patience
        self.curve: list[float] = []
        self.best_iteration, self.best_smoothed, self.best_raw = 0, -np.inf, float("nan")

    def smoothed(self, center: int) -> float:
        """Mean of the raw metric over ``window`` rounds centred on round index ``center``
        (clipped at the first round)."""
        half = self.window // 2
        return float(np.mean(self.curve[max(0, center - half) : center + half + 1]))

    def __call__(self, env: Any) -> None:
        values = [r[2] for r in env.evaluation_result_list or [] if r[1] == self.metric]
        if not values:
            raise ValueError(f"no validation metric {self.metric!r} to stop on")
        self.curve.append(float(values[0]))
        last = len(self.curve) - 1
        center = last - self.window // 2
        if center >= 0:
            self._consider(center)
        if env.iteration + 1 >= env.end_iteration:  # the last round: the tail's windows
            for c in range(max(center + 1, 0), last + 1):
                self._consider(c)
            return
        if center >= 0 and center + 1 - self.best_iteration >= max(
            self.patience, self.best_iteration
        ):
            raise lgb.callback.EarlyStopException(self.best_iteration - 1, [])

    def _consider(self, center: int) -> None:
        value = self.smoothed(center)
        if value > self.best_smoothed:
            self.best_iteration, self.best_smoothed = center + 1, value
            self.best_raw = self.curve[center]
