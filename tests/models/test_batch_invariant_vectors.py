"""Inference vectors do not depend on batch mates, bit for bit: a single request's user (and
candidate item) vectors equal the same rows computed inside an evaluation batch. Products of a
few rows take other BLAS kernels (other rounding), and a sequence batch was padded to its
longest history, so both once differed in the last bits."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from funnelrec.models import TowerSizes, TwoTower, YoutubeDNN
from funnelrec.models.layers import EmbeddingModel
from funnelrec.models.sequence import MIND, Caser, ComiRecSA, GRU4Rec, SASRec

N_ITEMS, N_USERS, ROWS = 300, 50, 37


def histories(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``ROWS`` users with 1..60 history items (ragged), ids and one user feature."""
    lens = torch.randint(1, 61, (ROWS,), generator=gen)
    offsets = torch.cumsum(lens, 0) - lens
    return {
        "user": torch.randint(0, N_USERS, (ROWS,), generator=gen),
        "user_feats": torch.randint(0, 4, (ROWS, 1), generator=gen),
        "hist_items": torch.randint(0, N_ITEMS, (int(lens.sum()),), generator=gen),
        "hist_offsets": offsets,
    }


def row(batch: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """The batch's row ``i`` alone."""
    ends = torch.cat([batch["hist_offsets"][1:], torch.tensor([len(batch["hist_items"])])])
    start, end = int(batch["hist_offsets"][i]), int(ends[i])
    return {
        "user": batch["user"][i : i + 1],
        "user_feats": batch["user_feats"][i : i + 1],
        "hist_items": batch["hist_items"][start:end],
        "hist_offsets": torch.tensor([0]),
    }


def two_tower() -> TwoTower:
    sizes = TowerSizes(N_USERS, N_ITEMS, (4,), n_categories=5, n_tags=9, max_tags=3, content_dim=7)
    model = TwoTower(sizes, 32, (64,), recent=3)
    gen = torch.Generator().manual_seed(1)
    model.set_item_features(
        torch.randint(0, 6, (N_ITEMS,), generator=gen),
        torch.randint(0, 10, (N_ITEMS, 3), generator=gen),
        torch.randn(N_ITEMS, 7, generator=gen),
    )
    return model


MODELS: dict[str, Callable[[], EmbeddingModel]] = {
    "two_tower": two_tower,
    "youtube_dnn": lambda: YoutubeDNN(N_ITEMS, 32, (64,), user_cards=(4,), recent=3),
    "sasrec": lambda: SASRec(N_ITEMS, 32, 50, blocks=2, heads=2),
    "caser": lambda: Caser(N_ITEMS, 32, 5),
    "gru4rec": lambda: GRU4Rec(N_ITEMS, 32, 50),
    "mind": lambda: MIND(N_ITEMS, 32, 50),
    "comirec_sa": lambda: ComiRecSA(N_ITEMS, 32, 50, hidden=64),
}


@pytest.fixture(params=[1, 2], ids=lambda t: f"threads={t}")
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_user_vectors_alone_equal_the_batch_rows_bit_for_bit(name: str, threads: int) -> None:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    batch = histories(torch.Generator().manual_seed(2))
    with torch.no_grad():
        together = model.user_vectors(batch)
        for i in range(ROWS):
            alone = model.user_vectors(row(batch, i))
            torch.testing.assert_close(alone[0], together[i], rtol=0, atol=0, msg=f"row {i}")


def test_two_tower_candidate_vectors_do_not_depend_on_the_candidate_count(threads: int) -> None:
    """The tower's item MLP scores rankers' candidates, whose count varies per request."""
    torch.manual_seed(0)
    model = two_tower().eval()
    items = torch.randperm(N_ITEMS)[:45]
    with torch.no_grad():
        together = model.item_vectors(items)
        for i in range(len(items)):
            alone = model.item_vectors(items[i : i + 1])
            torch.testing.assert_close(alone[0], together[i], rtol=0, atol=0, msg=f"item {i}")


def test_training_runs_on_the_batch_as_it_is() -> None:
    """With gradients on, nothing is padded: a one-row batch stays one row and its sequence
    width is its own history's length; at inference it is padded to 16 rows of ``max_len``."""
    model = SASRec(N_ITEMS, 16, 50, blocks=1)
    one = row(histories(torch.Generator().manual_seed(3)), 0)
    shapes: list[tuple[int, ...]] = []
    encode = model.encode

    def spy(seq: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(seq.shape))
        return encode(seq)

    model.encode = spy  # type: ignore[method-assign]
    model.user_vectors(one)
    assert shapes == [(1, min(50, len(one["hist_items"])))]
    with torch.no_grad():
        model.user_vectors(one)
    assert shapes[-1] == (16, 50)
