"""CTR models: forward shapes, and that crossing models learn planted interactions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from funnelrec.batch import Batch, FieldSpec, Schema
from funnelrec.eval import metrics
from funnelrec.models.ctr import CTR_MODELS, CTRConfig, build_model
from funnelrec.train.loop import seeded
from funnelrec.train.rows import TrainSettings, predict, train_model

SCHEMA = Schema(
    sparse=(
        FieldSpec("user_id", 12, "user"),
        FieldSpec("a", 4, "user"),
        FieldSpec("item_id", 22, "item"),
        FieldSpec("b", 4, "item"),
        FieldSpec("noise", 10, "context"),
    ),
    multi=(FieldSpec("tags", 7, "item", 3),),
    dense=(FieldSpec("x", 1, "item"), FieldSpec("score", 1, "candidate")),
    seq_len=5,
    seq_size=22,
    item_field=2,
    user_field=0,
)


def random_batch(n: int, rng: np.random.Generator) -> Batch:
    sizes = [f.size for f in SCHEMA.sparse]
    sparse = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    seq = rng.integers(0, 22, (n, 5))
    seq[: n // 2, :2] = 0  # left padding
    return Batch.from_numpy(
        sparse, rng.normal(size=(n, 2)).astype(np.float32), [rng.integers(0, 7, (n, 3))], seq
    )


@pytest.mark.parametrize("name", sorted(CTR_MODELS))
@pytest.mark.parametrize("interest", ["none", "mean", "gru", "transformer"])
def test_forward_shapes(name: str, interest: str) -> None:
    batch = random_batch(9, np.random.default_rng(0))
    model = build_model(name, SCHEMA, CTRConfig(dim=4, hidden=(8,), interest=interest))  # type: ignore[arg-type]
    out = model(batch)
    assert out.shape == (9,) and torch.isfinite(out).all()
    again = model(batch.as_dict())  # the training loop passes mappings
    torch.testing.assert_close(out, again)


def test_predict_in_chunks_matches_one_pass_and_slices_share_memory() -> None:
    batch = random_batch(23, np.random.default_rng(1))
    with seeded(0):
        model = build_model("deepfm", SCHEMA, CTRConfig(dim=4, hidden=(8,)))
    whole = predict(model, batch)
    np.testing.assert_array_equal(predict(model, batch, chunk=5), whole)
    assert whole.shape == (23,)
    part = batch.slice(5, 10)
    assert len(part) == 5 and part.sparse.data_ptr() == batch.sparse[5].data_ptr()
    assert part.seq is not None and torch.equal(part.seq, batch.take(np.arange(5, 10)).seq)


def xor_problem(n: int, seed: int) -> Batch:
    """Label = field ``a`` XOR field ``b`` (each 0/1, codes 2/3); every other input is noise.
    No first-order term separates the classes; a pairwise cross does."""
    rng = np.random.default_rng(seed)
    batch = random_batch(n, rng)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    batch.sparse[:, 1] = torch.from_numpy(a + 2)
    batch.sparse[:, 3] = torch.from_numpy(b + 2)
    label = (a ^ b).astype(np.float32)
    return batch.with_labels(torch.from_numpy(label))


def fitted_auc(name: str, train: Batch, test: Batch, **config: object) -> float:
    with seeded(0):
        model = build_model(name, SCHEMA, CTRConfig(dim=4, hidden=(16,), **config))  # type: ignore[arg-type]
    settings = TrainSettings(epochs=15, batch_size=256, lr=2e-2, threads=1, patience=15)
    train_model(model, train, None, settings)
    assert test.label is not None
    return metrics.auc(test.label.numpy(), predict(model, test))


def test_crossing_models_learn_xor_that_lr_cannot() -> None:
    train, test = xor_problem(1500, 1), xor_problem(500, 2)
    assert fitted_auc("lr", train, test) < 0.6
    for name in ("fm", "deepfm", "dcnv2", "autoint", "xdeepfm", "widedeep"):
        assert fitted_auc(name, train, test) > 0.9, name


def history_problem(n: int, seed: int) -> Batch:
    """Label = whether the candidate item is among the user's last behaviours."""
    rng = np.random.default_rng(seed)
    batch = random_batch(n, rng)
    seq = rng.integers(2, 22, (n, 5))
    item = np.where(
        rng.random(n) < 0.5, seq[np.arange(n), rng.integers(0, 5, n)], rng.integers(2, 22, n)
    )
    batch.sparse[:, 2] = torch.from_numpy(item)
    label = (seq == item[:, None]).any(1).astype(np.float32)
    return Batch(
        batch.sparse, batch.dense, batch.multi, torch.from_numpy(seq), torch.from_numpy(label)
    )


def test_target_attention_and_short_term_interest_use_the_sequence() -> None:
    train, test = history_problem(3000, 3), history_problem(800, 4)
    without = fitted_auc("deepfm", train, test)
    assert without < 0.7
    assert fitted_auc("din", train, test) > without + 0.15
    assert fitted_auc("deepfm", train, test, interest="mean") > without + 0.1


def test_cin_matches_the_explicit_vector_wise_crossing_formula() -> None:
    """CIN layer k: X^k_h = relu(Σ_ij W_hij X^{k-1}_i ⊙ X^0_j + b_h), sum-pooled over d."""
    from funnelrec.models.ctr.xdeepfm import CIN

    torch.manual_seed(0)
    n, m, d = 4, 5, 3
    cin = CIN(m, (4, 3))
    x0 = torch.randn(n, m, d)
    w1 = cin.convs[0].weight.view(4, m, m)
    x1 = torch.relu(torch.einsum("hij,nid,njd->nhd", w1, x0, x0) + cin.convs[0].bias[:, None])
    w2 = cin.convs[1].weight.view(3, 4, m)
    x2 = torch.relu(torch.einsum("hij,nid,njd->nhd", w2, x1, x0) + cin.convs[1].bias[:, None])
    expected = torch.cat([x1.sum(-1), x2.sum(-1)], dim=1)
    assert torch.allclose(cin(x0), expected, atol=1e-5)


def test_light_two_tower_score_is_the_field_and_mean_behaviour_formula() -> None:
    """``TwoTowerCTR`` (the light pre-ranker): linear + <user-side fields + mean of the
    non-pad behaviours, item-side fields>, computed here from ``embed`` / ``sequence``."""
    batch = random_batch(9, np.random.default_rng(1))
    model = build_model("twotower", SCHEMA, CTRConfig(dim=4))
    fields, linear = model.embed(batch)
    seq, mask = model.embed.sequence(batch)
    sources = SCHEMA.sources()
    user = fields[:, [s in ("user", "context") for s in sources]].sum(1)
    user = user + seq.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
    item = fields[:, [s == "item" for s in sources]].sum(1)
    torch.testing.assert_close(model(batch), linear + (user * item).sum(-1))
    total, count = model.embed.sequence_sum(batch)
    torch.testing.assert_close(total, seq.sum(1))
    assert count.tolist() == mask.sum(1).tolist()


@pytest.mark.parametrize("keep", [[0, 1, 4], [2, 3, 5, 6], [6, 7], [5], list(range(8))])
def test_fields_subset_equals_the_full_lookup_columns(keep: list[int]) -> None:
    """``fields(batch, keep)`` looks up only the kept fields (sparse, multi, dense) and gives
    exactly the full lookup's columns; ``first_order`` is ``forward``'s linear term."""
    batch = random_batch(11, np.random.default_rng(2))
    embed = build_model("fm", SCHEMA, CTRConfig(dim=4)).embed
    with torch.no_grad():
        embed.dense_vec.normal_()
        embed.weight.weight.normal_()
    fields, linear = embed(batch)
    subset = embed.fields(batch, torch.tensor(keep))
    assert torch.equal(subset, fields[:, keep])
    assert torch.equal(embed.first_order(batch), linear)


def test_light_two_tower_inference_equals_the_training_formula_bit_for_bit() -> None:
    """Inference scores from the two sides' fields alone; training from one lookup of every
    field: the logits are bit-identical (a served score is the score the model was
    validated with)."""
    batch = random_batch(300, np.random.default_rng(3))
    torch.manual_seed(0)
    model = build_model("twotower", SCHEMA, CTRConfig(dim=8))
    with torch.no_grad():
        model.embed.dense_vec.normal_()
        model.embed.weight.weight.normal_()
        inference = model(batch)
    training = model(batch)
    assert training.requires_grad and not inference.requires_grad
    assert torch.equal(inference, training.detach())


def test_lr_scores_without_field_vectors() -> None:
    batch = random_batch(9, np.random.default_rng(4))
    model = build_model("lr", SCHEMA, CTRConfig(dim=4))
    with torch.no_grad():
        model.embed.weight.weight.normal_()
    assert torch.equal(model(batch), model.embed(batch)[1])


def query_candidate_batch(rng: np.random.Generator) -> Batch:
    """A served pre-rank batch: 3 queries x 6 candidates in query order (user side, context
    and sequence shared within a query; items repeated across queries)."""
    base = random_batch(3, rng)
    rows = np.repeat(np.arange(3), 6)
    items = rng.choice(8, 18)  # an item's codes are the same wherever it appears
    item_codes = np.stack([items + 2, items % 4], axis=1)
    tags = np.stack([items % 7, (items * 3) % 7, np.zeros(18, dtype=np.int64)], axis=1)
    sparse = base.sparse.numpy()[rows].copy()
    sparse[:, 2:4] = item_codes
    dense = np.stack([items / 10.0, rng.normal(size=18)], axis=1).astype(np.float32)
    return Batch.from_numpy(sparse, dense, [tags], base.seq.numpy()[rows])  # type: ignore[union-attr]


def test_light_two_tower_embeds_each_distinct_side_once_with_the_same_scores() -> None:
    """Inference embeds each query's user side once (its candidates are adjacent) and each
    distinct item once (a two-tower's user tower runs once per request); the logits are
    bit-identical to the training formula's, to scoring every example alone and to scoring
    the batch shuffled."""
    rng = np.random.default_rng(5)
    batch = query_candidate_batch(rng)
    torch.manual_seed(0)
    model = build_model("twotower", SCHEMA, CTRConfig(dim=8))
    with torch.no_grad():
        model.embed.dense_vec.normal_()
        model.embed.weight.weight.normal_()
    looked_up: list[int] = []
    fields = model.embed.fields

    def counted(part: Batch, keep: torch.Tensor | None = None) -> torch.Tensor:
        looked_up.append(len(part))
        return fields(part, keep)

    model.embed.fields = counted  # type: ignore[method-assign,assignment]
    with torch.no_grad():
        inference = model(batch)
        alone = torch.cat([model(batch.slice(i, i + 1)) for i in range(len(batch))])
        perm = torch.as_tensor(rng.permutation(18))
        shuffled = model(batch.take(perm))
    n_items = len(np.unique(batch.sparse[:, 2].numpy()))
    assert looked_up[:2] == [3, n_items] and n_items < 18
    assert torch.equal(inference, model(batch).detach())
    assert torch.equal(inference, alone)
    assert torch.equal(shuffled, inference[perm])


def test_identical_runs_groups_adjacent_equal_rows_only() -> None:
    from funnelrec.models.ctr.twotower import _identical_runs

    codes = torch.tensor([[1, 2], [1, 2], [3, 4], [1, 2], [1, 2]])
    seq = torch.tensor([[5], [5], [5], [5], [6]])  # the last row differs in its sequence only
    first, group = _identical_runs([codes, seq], None)
    assert first.tolist() == [0, 2, 3, 4] and group.tolist() == [0, 0, 1, 2, 3]
    order = torch.tensor([0, 1, 3, 4, 2])  # equal codes side by side
    first, group = _identical_runs([codes], order)
    assert first.tolist() == [0, 2] and group.tolist() == [0, 0, 1, 0, 0]


@pytest.mark.parametrize(
    ("name", "interest"),
    [*((name, "none") for name in sorted(CTR_MODELS)), ("deepfm", "mean"), ("fm", "gru")],
)
def test_scoring_by_query_equals_scoring_pairs_that_carry_the_sequence(
    name: str, interest: str
) -> None:
    """``predict_queries`` (a batch without ``seq``, each query's behaviours once) gives the
    logits of ``predict`` on the same pairs each carrying its query's sequence, bit for bit,
    in one pass and in chunks that split a query's candidates (a product's blocking may
    depend on the chunk's rows, so chunks are compared with chunks)."""
    from funnelrec.train.rows import predict_queries

    rng = np.random.default_rng(6)
    batch = query_candidate_batch(rng)
    rows = torch.as_tensor(np.repeat(np.arange(3), 6))
    query_seq = batch.seq[::6].clone()  # type: ignore[index]
    torch.manual_seed(0)
    model = build_model(name, SCHEMA, CTRConfig(dim=8, hidden=(8,), interest=interest))  # type: ignore[arg-type]
    with torch.no_grad():
        model.embed.dense_vec.normal_()
        model.embed.weight.weight.normal_()
    pairs = Batch(batch.sparse, batch.dense, batch.multi)  # no [N, K] sequence block
    items = batch.sparse[:, 2]
    expected = predict(model, batch)
    np.testing.assert_array_equal(predict_queries(model, pairs, query_seq, rows, items), expected)
    in_chunks = predict_queries(model, pairs, query_seq, rows, items, chunk=4)
    np.testing.assert_array_equal(in_chunks, predict(model, batch, chunk=4))


def test_light_two_tower_scoring_by_query_embeds_each_user_and_item_side_once() -> None:
    rng = np.random.default_rng(7)
    batch = query_candidate_batch(rng)
    model = build_model("twotower", SCHEMA, CTRConfig(dim=8))
    looked_up: list[int] = []
    fields = model.embed.fields

    def counted(part: Batch, keep: torch.Tensor | None = None) -> torch.Tensor:
        looked_up.append(len(part))
        assert part.seq is None or len(part.seq) == len(part)
        return fields(part, keep)

    model.embed.fields = counted  # type: ignore[method-assign,assignment]
    rows = torch.as_tensor(np.repeat(np.arange(3), 6))
    pairs, items = Batch(batch.sparse, batch.dense, batch.multi), batch.sparse[:, 2]
    with torch.no_grad():
        model.score_queries(pairs, batch.seq[::6], rows, items)  # type: ignore[index]
    # the user side once per query (from the query's own sequence), the item side once per item
    assert looked_up == [3, len(torch.unique(items))] and len(torch.unique(items)) < 18
