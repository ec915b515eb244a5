"""Known answers for the losses and the log-Q correction."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from funnelrec.models.mf import MatrixFactorization
from funnelrec.train.losses import (
    Precision,
    RetrievalLoss,
    bce_loss,
    bpr_loss,
    mixture_log_q,
    pointwise_bce,
    sampled_softmax_loss,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bpr_known_answer() -> None:
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = -(math.log(sigmoid(1.0)) + math.log(sigmoid(-1.0))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    # several negatives per positive: mean over all pairs
    neg2 = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    pairs = [2.0 - 1.0, 2.0 - 3.0, 0.0, 0.0]
    expected2 = -sum(math.log(sigmoid(d)) for d in pairs) / 4
    assert bpr_loss(pos, neg2).item() == pytest.approx(expected2, rel=1e-6)


def test_bce_known_answer() -> None:
    logits, labels = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 0.0])
    expected = (math.log(2.0) + math.log(1 + math.exp(2.0)) + math.log(1 + math.exp(-1.0))) / 3
    assert bce_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    pw = pointwise_bce(torch.tensor([0.0]), torch.tensor([[2.0, -1.0]]))
    assert pw.item() == pytest.approx(expected, rel=1e-6)


def test_softmax_is_cross_entropy_over_in_batch_items() -> None:
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    ids = torch.tensor([5, 7])
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0]]) / 0.5
    expected = F.cross_entropy(logits, torch.tensor([0, 1]))
    got = sampled_softmax_loss(user, items, ids, temperature=0.5)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_log_q_subtracts_log_probability_per_column() -> None:
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    items = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    ids = torch.tensor([0, 1, 2])
    log_q = torch.log(torch.tensor([0.7, 0.2, 0.1]))
    shifted = user @ items.T - log_q  # the popular column loses, rare columns gain
    expected = F.cross_entropy(shifted, torch.arange(3))
    got = sampled_softmax_loss(user, items, ids, log_q=log_q)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # a constant shift changes nothing; a popular positive's loss goes up
    same = sampled_softmax_loss(user, items, ids, log_q=torch.full((3,), -2.0))
    plain = sampled_softmax_loss(user, items, ids)
    assert same.item() == pytest.approx(plain.item(), rel=1e-6)
    assert got.item() != pytest.approx(plain.item())


def test_accidental_hits_are_masked() -> None:
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    ids = torch.tensor([4, 4, 9])  # rows 0 and 1 share item 4; column 2 is an extra negative
    got = sampled_softmax_loss(user[:2], items, ids)
    # row 0: column 1 (same item) masked -> logits [1, 0] over columns 0 and 2
    row0 = F.cross_entropy(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    row1 = F.cross_entropy(torch.tensor([[0.0, 2.0]]), torch.tensor([0]))
    assert got.item() == pytest.approx((row0 + row1).item() / 2, rel=1e-6)


def test_mixture_log_q() -> None:
    batch_prob = torch.tensor([0.5, 0.3, 0.2])
    extra_prob = torch.tensor([1 / 3, 1 / 3, 1 / 3])
    got = mixture_log_q(torch.tensor([0, 2]), batch_prob, 4, extra_prob, 3)
    expected = torch.log(torch.tensor([4 * 0.5 + 1.0, 4 * 0.2 + 1.0]))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("kind", ["bpr", "bce", "softmax"])
def test_retrieval_loss_trains_mf(kind: str) -> None:
    torch.manual_seed(0)
    model = MatrixFactorization(4, 6, 8)
    batch = {
        "user": torch.tensor([0, 1, 2, 3]),
        "item": torch.tensor([0, 1, 2, 3]),
        "neg": torch.tensor([[4], [5], [4], [5]]),
        "extra": torch.tensor([4, 5]),
    }
    loss_fn = RetrievalLoss(kind, l2=1e-3, batch_prob=torch.full((6,), 1 / 6))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = loss_fn(model, batch).item()
    for _ in range(30):
        opt.zero_grad()
        loss_fn(model, batch).backward()  # type: ignore[no-untyped-call]
        opt.step()
    assert loss_fn(model, batch).item() < first


def test_explicit_targets_over_distinct_columns() -> None:
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    got = sampled_softmax_loss(user, items, torch.tensor([4, 9]), target=torch.tensor([0, 0]))
    expected = F.cross_entropy(user @ items.T, torch.tensor([0, 0]))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_shared_softmax_known_answer() -> None:
    """Row b: own positive vs the shared columns, a column holding b's own item masked."""
    from funnelrec.train.losses import shared_softmax_loss

    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    pos_ids = torch.tensor([3, 4])
    shared = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    shared_ids = torch.tensor([3, 7])  # column 0 is row 0's own item
    got = shared_softmax_loss(user, pos, pos_ids, shared, shared_ids, temperature=0.5)
    row0 = -(2.0 - math.log(math.exp(2.0) + math.exp(0.0)))  # column 0 masked
    row1 = -(4.0 - math.log(math.exp(4.0) + math.exp(0.0) + math.exp(2.0)))
    assert float(got) == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_in_batch_covering_the_batch_is_the_full_softmax() -> None:
    torch.manual_seed(0)
    model = MatrixFactorization(n_users=6, n_items=20, dim=4)
    batch = {"user": torch.arange(6), "item": torch.tensor([1, 2, 3, 2, 5, 9])}
    prob = torch.full((20,), 1 / 20)
    full = RetrievalLoss("softmax", batch_prob=prob)(model, batch)
    covering = RetrievalLoss("softmax", batch_prob=prob, in_batch=6)(model, batch)
    assert float(full.detach()) == float(covering.detach())
    shared = RetrievalLoss("softmax", batch_prob=prob, in_batch=2)(model, batch)
    assert torch.isfinite(shared) and float(shared.detach()) != float(full.detach())


def _reference_shared_lse(user, shared, log_q, rows, cols):  # type: ignore[no-untyped-def]
    """The plain autograd formulation the fused ``SharedLogSumExp`` replaces."""
    logits = user @ shared.T - log_q
    logits = logits.index_put((rows, cols), torch.tensor(float("-inf"), dtype=logits.dtype))
    return torch.logsumexp(logits, dim=1)


@pytest.mark.parametrize(
    ("dtype", "n_rows", "n_cols", "dim", "tol"),
    [
        (torch.float64, 37, 11, 8, {}),
        # rows wider than a vector register, float32: the in-place softmax path the loss takes
        (torch.float32, 64, 301, 16, {"rtol": 1e-4, "atol": 1e-5}),
    ],
)
def test_fused_shared_logsumexp_matches_autograd_values_and_gradients(
    dtype: torch.dtype, n_rows: int, n_cols: int, dim: int, tol: dict[str, float]
) -> None:
    from funnelrec.train.losses import SharedLogSumExp

    gen = torch.Generator().manual_seed(3)
    user = (2 * torch.randn(n_rows, dim, generator=gen, dtype=dtype)).requires_grad_()
    shared = torch.randn(n_cols, dim, generator=gen, dtype=dtype, requires_grad=True)
    log_q = torch.randn(n_cols, generator=gen, dtype=dtype)
    rows = torch.arange(0, n_rows, 3)
    cols = torch.randint(0, n_cols, (len(rows),), generator=gen)
    weight = torch.randn(n_rows, generator=gen, dtype=dtype)
    got = SharedLogSumExp.apply(user, shared, log_q, rows, cols)
    (got * weight).sum().backward()
    grads = (user.grad.clone(), shared.grad.clone())  # type: ignore[union-attr]
    user.grad = shared.grad = None
    expected = _reference_shared_lse(user, shared, log_q, rows, cols)
    (expected * weight).sum().backward()
    torch.testing.assert_close(got, expected, **tol)
    torch.testing.assert_close(grads[0], user.grad, **tol)
    torch.testing.assert_close(grads[1], shared.grad, **tol)


def test_fused_shared_logsumexp_fully_masked_row_has_finite_gradient() -> None:
    from funnelrec.train.losses import shared_softmax_loss

    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    shared = torch.tensor([[2.0, 0.0]], requires_grad=True)  # one column: row 0's own item
    loss = shared_softmax_loss(
        user, torch.ones(2, 2), torch.tensor([3, 4]), shared, torch.tensor([3])
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(user.grad).all() and torch.isfinite(shared.grad).all()  # type: ignore[union-attr]


def _shared_softmax_case(seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    user = torch.randn(32, 8, generator=g, requires_grad=True)
    pos = torch.randn(32, 8, generator=g, requires_grad=True)
    shared = torch.randn(20, 8, generator=g, requires_grad=True)
    pos_ids = torch.randint(0, 40, (32,), generator=g)
    shared_ids = torch.randperm(40, generator=g)[:20]
    return user, pos, pos_ids, shared, shared_ids


def _grads(
    seeds: list[int], monkeypatch: pytest.MonkeyPatch | None, precision: Precision = "float32"
) -> list[torch.Tensor]:
    """Gradients of the sum of one shared-softmax loss per seed (all graphs alive at once);
    with ``monkeypatch``, the logits workspace is never handed out."""
    from funnelrec.train.losses import LOGITS_WORKSPACE, shared_softmax_loss

    if monkeypatch is not None:
        monkeypatch.setattr(LOGITS_WORKSPACE, "take", lambda *a: None)
    cases = [_shared_softmax_case(s) for s in seeds]
    total = sum(shared_softmax_loss(*c, temperature=0.5, precision=precision) for c in cases)
    torch.as_tensor(total).backward()
    return [t.grad for c in cases for t in (c[0], c[1], c[3])]  # type: ignore[misc]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_logits_workspace_changes_no_value(seeds: list[int], precision: Precision) -> None:
    """The shared softmax's reusable logits buffers (one graph, or several alive at once:
    only the first may hold them) give exactly the gradients of fresh allocations, and are
    free again once backward has run. ``bfloat16`` also borrows the bfloat16 buffer, for
    the product in forward and the narrowed gradient in backward."""
    from funnelrec.train.losses import LOGITS_WORKSPACE

    LOGITS_WORKSPACE.clear()
    taken: list[tuple[torch.dtype, bool]] = []
    take = LOGITS_WORKSPACE.take

    def spy(rows: int, cols: int, like: torch.Tensor) -> torch.Tensor | None:
        out = take(rows, cols, like)
        taken.append((like.dtype, out is not None))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LOGITS_WORKSPACE, "take", spy)
        reused = _grads(seeds, None, precision)
    f32, bf16 = torch.float32, torch.bfloat16
    if precision == "float32":
        assert taken == [(f32, True)] + [(f32, False)] * (len(seeds) - 1)
    else:  # forward, per graph: float32 logits (the first graph only) + the bfloat16
        # product (handed back at once); backward: the narrowed gradient of the graph
        # holding the float32 buffer (the others allocate)
        forward = [(f32, True), (bf16, True)] + [(f32, False), (bf16, True)] * (len(seeds) - 1)
        assert taken == [*forward, (bf16, True)]
    with pytest.MonkeyPatch.context() as mp:
        fresh = _grads(seeds, mp, precision)
    for a, b in zip(reused, fresh, strict=True):
        assert torch.equal(a, b)
    for dtype in (f32, bf16):  # handed back
        assert LOGITS_WORKSPACE.take(2, 2, torch.zeros(1, dtype=dtype)) is not None
    LOGITS_WORKSPACE.clear()


def test_bfloat16_products_approximate_the_float64_softmax_and_keep_float32() -> None:
    """``precision="bfloat16"``: the three [B, C] products take bfloat16 inputs; the loss
    and the gradients come back float32 and within bfloat16's rounding of the exact ones
    (relative 2^-8 on the logits), and the positives' scores are not rounded at all."""
    from funnelrec.train.losses import shared_softmax_loss

    def loss_and_grads(precision: Precision, dtype: torch.dtype) -> list[torch.Tensor]:
        user, pos, pos_ids, shared, shared_ids = (
            t.detach().to(dtype).requires_grad_(t.requires_grad) if t.is_floating_point() else t
            for t in _shared_softmax_case(5)
        )
        log_q = torch.linspace(-2, 1, 20, dtype=dtype)
        loss = shared_softmax_loss(
            user, pos, pos_ids, shared, shared_ids, log_q[pos_ids % 20], log_q, 0.5, precision
        )
        loss.backward()
        return [loss.detach(), user.grad, pos.grad, shared.grad]  # type: ignore[list-item]

    low = loss_and_grads("bfloat16", torch.float32)
    exact = loss_and_grads("float32", torch.float64)
    same = loss_and_grads("float32", torch.float32)
    assert all(t.dtype == torch.float32 for t in low)
    for got, want in zip(low, exact, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=0.02, atol=0.02)
    assert not torch.equal(low[1], same[1])  # the products really were rounded
    torch.testing.assert_close(low[2], same[2], rtol=0.02, atol=1e-3)


def test_unknown_precision_is_one_line_error() -> None:
    from funnelrec.errors import ConfigError
    from funnelrec.recall.two_tower import TwoTowerRecall
    from funnelrec.train.sequence import NextItemLoss

    with pytest.raises(ValueError, match="unknown precision 'float16'; known: float32, bfloat16"):
        RetrievalLoss("softmax", precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        NextItemLoss("sampled", 10, precision="half")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'precision': Input should be 'float32' or 'bfloat16'"):
        TwoTowerRecall(precision="float16")


def test_logits_workspace_is_not_held_without_backward() -> None:
    from funnelrec.train.losses import LOGITS_WORKSPACE, shared_softmax_loss

    LOGITS_WORKSPACE.clear()
    with torch.no_grad():
        shared_softmax_loss(*_shared_softmax_case(0))
    assert LOGITS_WORKSPACE.take(2, 2, torch.zeros(1)) is not None
    LOGITS_WORKSPACE.clear()


def test_bfloat16_on_a_cpu_without_bf16_units_warns(tmp_path: Path) -> None:
    """The products are emulated without AVX512-BF16 / AMX: one warning, none otherwise."""
    from funnelrec.train.losses import cpu_flags, warn_if_emulated

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_flags(info) == {"fpu", "sse", "avx2", "avx512f"}
    assert cpu_flags(tmp_path / "missing") is None
    cpu = torch.device("cpu")
    with pytest.warns(UserWarning, match="without AVX512-BF16 or AMX: the products are emulated"):
        warn_if_emulated("bfloat16", cpu, {"avx2", "avx512f"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_emulated("bfloat16", cpu, {"avx512f", "avx512_bf16"})
        warn_if_emulated("bfloat16", cpu, {"amx_bf16"})
        warn_if_emulated("float32", cpu, set())
        warn_if_emulated("bfloat16", torch.device("meta"), set())  # not a CPU


def test_logits_workspace_grows_with_headroom() -> None:
    """A request a little larger than the last (the next step's distinct negatives) lands in
    the same buffer: growth leaves ``HEADROOM``, so a new maximum does not map a new one."""
    from funnelrec.train.losses import LOGITS_WORKSPACE

    LOGITS_WORKSPACE.clear()
    like = torch.zeros(1)
    first = LOGITS_WORKSPACE.take(100, 100, like)
    assert first is not None
    LOGITS_WORKSPACE.give_back()
    wider = LOGITS_WORKSPACE.take(100, 120, like)  # 1.2x: within the headroom
    assert wider is not None and wider.shape == (100, 120)
    assert wider.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
    LOGITS_WORKSPACE.give_back()
    grown = LOGITS_WORKSPACE.take(100, 200, like)  # beyond it: a new, larger buffer
    assert grown is not None and grown.untyped_storage().nbytes() >= 100 * 200 * 4 * 1.25
    LOGITS_WORKSPACE.clear()
