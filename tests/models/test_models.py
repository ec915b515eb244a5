"""Shapes and invariants of the embedding models."""

from __future__ import annotations

import torch

from funnelrec.models import MatrixFactorization, TowerSizes, TwoTower, YoutubeDNN
from funnelrec.models.layers import pool_history

HIST = {
    "hist_items": torch.tensor([1, 2, 3, 4, 5]),
    "hist_offsets": torch.tensor([0, 3, 3]),  # rows: [1 2 3], [], [4 5]
}


def test_pool_history_mean_recent_and_empty_rows() -> None:
    weight = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    out = pool_history(weight, HIST["hist_items"], HIST["hist_offsets"], recent=1)
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[0], torch.cat([weight[1:4].mean(0), weight[3]]))
    torch.testing.assert_close(out[1], torch.zeros(4))
    torch.testing.assert_close(out[2], torch.cat([weight[4:6].mean(0), weight[5]]))


def test_mf_bias_folded_into_vectors() -> None:
    model = MatrixFactorization(3, 5, 4, item_bias=True)
    with torch.no_grad():
        model.bias.weight.fill_(0.5)  # type: ignore[union-attr]
    users = model.user_vectors({"user": torch.tensor([0, 2])})
    items = model.item_vectors(torch.tensor([1, 4]))
    assert users.shape == (2, 5) and items.shape == (2, 5)
    raw = model.user(torch.tensor([0, 2])) @ model.item(torch.tensor([1, 4])).T
    torch.testing.assert_close(users @ items.T, raw + 0.5)


def two_tower(**kwargs: object) -> TwoTower:
    sizes = TowerSizes(
        n_users=4, n_items=6, user_cards=(3,), n_categories=2, n_tags=5, max_tags=3, content_dim=2
    )
    model = TwoTower(sizes, 8, (16,), recent=2, **kwargs)  # type: ignore[arg-type]
    model.set_item_features(
        torch.tensor([1, 1, 2, 2, 0, 1]),
        torch.tensor([[1, 2, 0], [1, 0, 0], [3, 4, 5], [0, 0, 0], [2, 0, 0], [5, 0, 0]]),
        torch.randn(6, 2),
    )
    return model


def test_two_tower_normalised_vectors_and_unknown_users() -> None:
    model = two_tower().eval()
    batch = {"user": torch.tensor([0, -1, 3]), "user_feats": torch.tensor([[1], [0], [3]]), **HIST}
    users = model.user_vectors(batch)
    items = model.item_vectors(torch.arange(6))
    assert users.shape == (3, 8) and items.shape == (6, 8)
    torch.testing.assert_close(users.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(items.norm(dim=1), torch.ones(6))


def test_two_tower_new_item_without_id() -> None:
    model = two_tower().eval()
    no_id = torch.tensor([6])  # == n_items: the padding id
    vec = model.encode_items(no_id, torch.tensor([1]), torch.tensor([[1, 2, 0]]), torch.zeros(1, 2))
    assert vec.shape == (1, 8) and torch.isfinite(vec).all()


def test_two_tower_id_dropout_only_in_training() -> None:
    model = two_tower(id_dropout=1.0)
    items = torch.arange(6)
    model.eval()
    with_id = model.item_vectors(items)
    model.train()
    without = model.item_vectors(items)
    expected = model.encode_items(torch.full((6,), 6), model.item_cat, model.item_tags,
                                  model.item_content)  # fmt: skip
    torch.testing.assert_close(without, expected)
    assert not torch.allclose(with_id, without)


def test_youtube_dnn_shapes() -> None:
    model = YoutubeDNN(6, 8, (16,), user_cards=(3,), recent=1, normalize=True).eval()
    users = model.user_vectors({**HIST, "user_feats": torch.tensor([[1], [0], [2]])})
    assert users.shape == (3, 8)
    torch.testing.assert_close(users.norm(dim=1), torch.ones(3))
    assert model.item_vectors(torch.tensor([0, 5])).shape == (2, 8)
