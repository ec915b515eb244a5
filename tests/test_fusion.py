"""Score fusion, Pareto fronts, the fusion sweep and its plot (``rank/fusion.py``)."""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pytest

from funnelrec.eval import metrics
from funnelrec.rank.fusion import (
    explore_front,
    fuse,
    pareto_mask,
    plot_front,
    simplex_grid,
    sweep_fusion,
)


def test_fuse_known_answers() -> None:
    logits = np.array([[0.0, 0.0], [np.log(3.0), -np.log(3.0)]])  # probs .5/.5, .75/.25
    np.testing.assert_allclose(fuse(logits, [1.0, 2.0], "sum"), [1.5, 0.75 + 0.5])
    np.testing.assert_allclose(
        np.exp(fuse(logits, [1.0, 2.0], "product")), [0.5 * 0.25, 0.75 * 0.0625]
    )
    with pytest.raises(ValueError, match=r"-1\.0"):
        fuse(logits, [1.0, -1.0])
    with pytest.raises(ValueError, match="3 fusion weights"):
        fuse(logits, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="'max'"):
        fuse(logits, [1.0, 1.0], "max")  # type: ignore[arg-type]


def test_pareto_mask_known_answer() -> None:
    pts = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.4, 0.4], [1, 0], [0.2, 0.9]])
    np.testing.assert_array_equal(pareto_mask(pts), [True, True, True, False, True, True])


def test_simplex_grid() -> None:
    grid = simplex_grid(3, 4)
    assert len(grid) == comb(4 + 2, 2)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert (grid >= 0).all() and len(np.unique(grid, axis=0)) == len(grid)


def _two_objectives(n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.random((n, 2)) < 0.3
    logits = np.stack([y[:, 0] * 1.5, y[:, 1] * 1.5], axis=1) + rng.normal(size=(n, 2))
    return logits, y.astype(np.float32)


def test_sweep_front_is_non_dominated_and_ends_are_single_tasks(tmp_path: Path) -> None:
    logits, y = _two_objectives()
    sweep = sweep_fusion(logits, y, ["click", "buy"], simplex_grid(2, 10))
    obj, front = sweep.objectives, sweep.front
    assert front.any()
    for i in np.flatnonzero(front):  # no point beats a front point everywhere
        better = (obj >= obj[i]).all(1) & (obj > obj[i]).any(1)
        assert not better.any()
    only_click = np.flatnonzero((sweep.weights == [1.0, 0.0]).all(1))[0]
    assert obj[only_click, 0] == pytest.approx(metrics.auc(y[:, 0], logits[:, 0]))
    assert obj[only_click, 0] > obj[only_click, 1]  # trading one objective for the other
    path = plot_front(obj, front, sweep.names, tmp_path / "plots" / "sweep.png", "t")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_explore_front_marks_dominated_runs() -> None:
    results = {0.0: ([0.7, 0.7], [0.5, 0.5]), 0.5: ([0.8, 0.6], [0.6, 0.4]),
               0.9: ([0.6, 0.6], [0.9, 0.1])}  # fmt: skip
    front = explore_front(lambda c: results[c[0]], [[0.0, 0.0], [0.5, 0.0], [0.9, 0.0]])
    np.testing.assert_array_equal(front.front, [True, True, False])
    np.testing.assert_allclose(front.weights[2], [0.9, 0.1])
