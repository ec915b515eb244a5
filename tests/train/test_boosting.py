"""SmoothedEarlyStopping: known stopping rounds on hand-made curves, and inside lgb.train."""

from __future__ import annotations

from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pytest

from funnelrec.train.boosting import SmoothedEarlyStopping


def _run(stop: SmoothedEarlyStopping, curve: list[float]) -> int:
    """Feeds ``curve`` round by round as LightGBM would; returns the rounds trained."""
    for i, value in enumerate(curve):
        env = SimpleNamespace(
            iteration=i, end_iteration=len(curve),
            evaluation_result_list=[("valid_0", "ndcg@10", value, True)],
        )  # fmt: skip
        try:
            stop(env)
        except lgb.callback.EarlyStopException as done:
            assert done.best_iteration + 1 == stop.best_iteration
            return i + 1
    return len(curve)


def _spike_then_climb() -> list[float]:
    """0.20 with a one-round spike (0.30) at round 5, then a climb to 0.26 at round 30."""
    curve = [0.20] * 200
    curve[4] = 0.30
    for r in range(6, 201):
        curve[r - 1] = 0.20 + 0.06 * min(r - 6, 24) / 24
    return curve


def test_the_raw_rule_stops_on_the_early_spike() -> None:
    stop = SmoothedEarlyStopping("ndcg@10", window=1, patience=10)
    trained = _run(stop, _spike_then_climb())
    assert (stop.best_iteration, trained) == (5, 15)
    assert stop.best_raw == pytest.approx(0.30)


def test_the_smoothed_rule_sits_out_the_spike_and_keeps_the_plateau() -> None:
    stop = SmoothedEarlyStopping("ndcg@10", window=5, patience=10)
    trained = _run(stop, _spike_then_climb())
    # the 5-round mean first reaches the plateau's 0.26 centred at round 32 (rounds 30..34)
    assert stop.best_iteration == 32
    assert stop.best_smoothed == pytest.approx(0.26)
    # it waits max(patience, best round) = 32 rounds after the best, plus the half window
    assert trained == 32 + 32 + 2


def test_the_tail_windows_count_when_training_ends_first() -> None:
    curve = list(np.linspace(0.1, 0.2, 30))  # still rising at the last round
    stop = SmoothedEarlyStopping("ndcg@10", window=7, patience=50)
    assert _run(stop, curve) == 30
    assert stop.best_iteration == 30  # the clipped window at the end holds the highest mean


@pytest.mark.parametrize(("window", "patience"), [(4, 10), (0, 10), (5, 0)])
def test_bad_settings_are_one_line_errors(window: int, patience: int) -> None:
    with pytest.raises(ValueError, match=r"window|patience"):
        SmoothedEarlyStopping("ndcg@10", window=window, patience=patience)


def test_a_missing_metric_is_an_error() -> None:
    stop = SmoothedEarlyStopping("ndcg@5")
    with pytest.raises(ValueError, match="ndcg@5"):
        _run(stop, [0.1])


def test_inside_lightgbm_the_kept_model_is_the_best_smoothed_round() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=2000) > 1).astype(float)
    groups = np.full(100, 20)
    train = lgb.Dataset(x, y, group=groups)
    valid = lgb.Dataset(x[:1000], y[:1000], group=groups[:50], reference=train)
    stop = SmoothedEarlyStopping("ndcg@10", window=5, patience=5)
    params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "verbosity": -1,
              "num_threads": 1, "deterministic": True, "learning_rate": 0.3}  # fmt: skip
    booster = lgb.train(params, train, 300, valid_sets=[valid], callbacks=[stop])
    trained = len(stop.curve)
    assert 1 <= stop.best_iteration < trained < 300  # it stopped early
    assert booster.current_iteration() == stop.best_iteration  # lgb.train cut it there
    means = [stop.smoothed(c) for c in range(trained - 2)]
    assert stop.best_smoothed == pytest.approx(max(means))
    assert stop.best_iteration == int(np.argmax(means)) + 1
