"""The generic loop: early stopping restores the best epoch, seeding is scoped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from funnelrec.train.loop import fit


class Climber(nn.Module):
    """One weight that climbs by exactly ``lr`` per step (loss ``-w``, SGD)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def one_batch(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
    yield {"x": torch.zeros(1)}


def climb(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    assert isinstance(model, Climber)
    return -model.w.sum()


def peak_at_three(model: nn.Module) -> float:
    assert isinstance(model, Climber)
    return -float((model.w - 3.0).pow(2).sum())


def test_early_stopping_restores_best_epoch() -> None:
    model = Climber()
    result = fit(
        model, one_batch, climb, epochs=20, lr=1.0, optimizer="sgd",
        validate=peak_at_three, patience=2, progress=False,
    )  # fmt: skip
    assert result.best_epoch == 3
    assert result.epochs_run == 5  # epochs 4 and 5 did not improve
    assert result.best_metric == pytest.approx(0.0)
    assert model.w.item() == pytest.approx(3.0)
    assert [h.epoch for h in result.history] == [1, 2, 3, 4, 5]


def test_without_validation_runs_all_epochs() -> None:
    model = Climber()
    result = fit(model, one_batch, climb, epochs=4, lr=0.5, optimizer="sgd", progress=False)
    assert result.best_epoch == 4 and result.best_metric is None
    assert model.w.item() == pytest.approx(2.0)


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.5)


def random_batches(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
    for _ in range(3):
        yield {"x": torch.from_numpy(rng.standard_normal((8, 4)).astype(np.float32))}


def noisy_loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    assert isinstance(model, Noisy)
    out: Tensor = model.lin(model.drop(batch["x"]))
    return out.pow(2).mean()


def fresh_model() -> Noisy:
    model = Noisy()
    with torch.no_grad():
        model.lin.weight.fill_(0.5)
        model.lin.bias.fill_(0.1)
    return model


def test_seeded_and_global_rng_untouched() -> None:
    models = [fresh_model() for _ in range(3)]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for model, seed in zip(models, (1, 1, 2), strict=True):
        fit(model, random_batches, noisy_loss, epochs=3, lr=0.1, seed=seed, progress=False)
    a, b, c = (m.lin.weight.detach() for m in models)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(torch.get_rng_state(), state)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="epochs"):
        fit(Climber(), one_batch, climb, epochs=0, lr=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        fit(Climber(), one_batch, climb, epochs=1, lr=1.0, optimizer="nope")  # type: ignore[arg-type]
