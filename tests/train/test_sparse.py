"""Sparse embedding gradients: only the batch's rows move, clipping matches dense, the
channel's ``sparse_grad`` resolves by catalogue size, and a sparse-trained channel still learns."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from funnelrec.errors import ConfigError
from funnelrec.models.mf import MatrixFactorization
from funnelrec.recall._embedding import SPARSE_AUTO_ITEMS, EmbeddingParams, use_sparse
from funnelrec.train.loop import fit
from funnelrec.train.losses import RetrievalLoss
from funnelrec.train.sparse import clip_grad_norm, sparse_embeddings


def _batches(items: Tensor) -> object:
    def batches(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
        for _ in range(5):
            yield {"user": torch.tensor([0, 1, 2, 3]), "item": items}

    return batches


@pytest.mark.parametrize("sparse", [False, True])
def test_only_batch_rows_move_when_sparse(sparse: bool) -> None:
    torch.manual_seed(0)
    model = MatrixFactorization(n_users=4, n_items=50, dim=8)
    before = model.item.weight.detach().clone()
    loss = RetrievalLoss("softmax", temperature=0.5)
    used = torch.tensor([0, 1, 2, 3])
    fit(model, _batches(used), loss, epochs=2, lr=0.05, sparse=sparse)  # type: ignore[arg-type]
    moved = (model.item.weight.detach() != before).any(dim=1)
    assert moved[used].all()
    # dense Adam moves no untouched row either (zero gradient, zero moments): the sparse
    # path matches it there, and differs only in how moments of absent rows decay
    assert not moved[4:].any()
    assert not model.item.sparse  # restored after training


def test_sparse_and_dense_agree_on_first_step() -> None:
    """One Adam step from zero moments is the same update, sparse or dense."""
    results = []
    for sparse in (False, True):
        torch.manual_seed(0)
        model = MatrixFactorization(n_users=4, n_items=50, dim=8)

        def one(epoch: int, rng: np.random.Generator) -> Iterator[dict[str, Tensor]]:
            yield {"user": torch.tensor([0, 1, 2, 3]), "item": torch.tensor([5, 6, 7, 5])}

        fit(model, one, RetrievalLoss("softmax"), epochs=1, lr=0.01, sparse=sparse)
        results.append(model.item.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1])


def test_clip_matches_dense_clip() -> None:
    grads = []
    for sparse in (False, True):
        torch.manual_seed(0)
        emb, lin = nn.Embedding(10, 4), nn.Linear(4, 1)
        with sparse_embeddings(emb, sparse):
            lin(emb(torch.tensor([1, 2, 2, 7]))).pow(2).sum().mul(100).backward()
        params = [emb.weight, *lin.parameters()]
        norm = clip_grad_norm(iter(params), 0.5)
        grad = emb.weight.grad
        assert grad is not None
        grads.append((float(norm), grad.to_dense() if sparse else grad, lin.weight.grad))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1])
    torch.testing.assert_close(grads[0][2], grads[1][2])


def test_sparse_grad_resolution() -> None:
    auto = EmbeddingParams()
    assert not use_sparse(auto, SPARSE_AUTO_ITEMS - 1)
    assert use_sparse(auto, SPARSE_AUTO_ITEMS)
    assert not use_sparse(auto, SPARSE_AUTO_ITEMS, dense_output=True)
    assert not use_sparse(EmbeddingParams(weight_decay=1e-4), 10**6)
    assert use_sparse(EmbeddingParams(sparse_grad=True), 10)
    with pytest.raises(ConfigError, match="weight_decay"):
        use_sparse(EmbeddingParams(sparse_grad=True, weight_decay=1e-4), 10)


def test_fit_rejects_sparse_with_weight_decay() -> None:
    model = MatrixFactorization(n_users=4, n_items=10, dim=4)
    with pytest.raises(ValueError, match="weight_decay"):
        fit(model, _batches(torch.tensor([0, 1, 2, 3])), RetrievalLoss("softmax"),  # type: ignore[arg-type]
            epochs=1, lr=0.01, weight_decay=0.1, sparse=True)  # fmt: skip


def test_lazy_adam_matches_torch_sparse_adam() -> None:
    """Same updates as ``torch.optim.SparseAdam`` over several steps with repeated rows."""
    from funnelrec.train.sparse import LazyAdam

    torch.manual_seed(0)
    tables = [nn.EmbeddingBag(30, 4, mode="sum", sparse=True) for _ in range(2)]
    tables[1].load_state_dict(tables[0].state_dict())
    optimisers = [LazyAdam(list(tables[0].parameters()), lr=0.05),
                  torch.optim.SparseAdam(list(tables[1].parameters()), lr=0.05)]  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        ids = torch.randint(0, 12, (8, 5), generator=gen)  # rows repeat within the batch
        target = torch.randn(8, 4, generator=gen)
        for table, opt in zip(tables, optimisers, strict=True):
            opt.zero_grad()
            ((table(ids) - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(tables[0].weight, tables[1].weight)
    untouched = torch.arange(12, 30)
    assert torch.equal(tables[0].weight[untouched], tables[1].weight[untouched])


def test_lazy_adam_torch_path_is_bit_identical_to_index_add() -> None:
    """The torch path (``fused=False``, any device) gathers, moves and writes back the touched
    rows; the values are exactly those of ``param.index_add_(0, rows, update,
    alpha=-step_size)`` (the formulation it replaced), including rows repeated within a
    gradient and steps with different row sets."""
    import math

    from funnelrec.train.adam_rows import merged_rows
    from funnelrec.train.sparse import LazyAdam

    gen = torch.Generator().manual_seed(2)
    weight = torch.randn(500, 64, generator=gen)
    fast = nn.Parameter(weight.clone())
    opt = LazyAdam([fast], lr=0.01, fused=False)
    ref, avg_ref, sq_ref = weight.clone(), torch.zeros(500, 64), torch.zeros(500, 64)
    for step in range(1, 5):
        ids = torch.randint(0, 200, (300,), generator=gen)
        values = torch.randn(300, 64, generator=gen)
        grad = torch.sparse_coo_tensor(ids[None], values, (500, 64), check_invariants=True)
        fast.grad = grad
        opt.step()
        rows, g = merged_rows(grad)
        avg = avg_ref.index_select(0, rows).lerp_(g, 0.1)
        sq = sq_ref.index_select(0, rows).lerp_(g.square(), 0.001)
        avg_ref.index_copy_(0, rows, avg)
        sq_ref.index_copy_(0, rows, sq)
        step_size = 0.01 * math.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        ref.index_add_(0, rows, avg.div_(sq.sqrt_().add_(1e-8)), alpha=-step_size)
        assert torch.equal(fast.detach(), ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lazy_adam_fused_rows_match_the_torch_path(
    dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled row update (the CPU default) moves the weights and both moments as the
    torch path does, to float rounding, over steps with repeated and changing rows, coalesced
    or not; rows never in a gradient stay bit for bit; numba takes torch's thread count."""
    import numba

    from funnelrec.train import adam_rows
    from funnelrec.train.adam_rows import fused_supported
    from funnelrec.train.sparse import LazyAdam

    launches: list[int] = []
    kernel = adam_rows._adam_rows
    monkeypatch.setattr(adam_rows, "_adam_rows", lambda *a: launches.append(1) or kernel(*a))

    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(2000, 64, generator=gen, dtype=dtype)
    params = [nn.Parameter(weight.clone()) for _ in range(2)]
    assert fused_supported(params[0]) and not fused_supported(params[0][:, :8])
    fused, plain = LazyAdam([params[0]], lr=0.01), LazyAdam([params[1]], lr=0.01, fused=False)
    assert fused.fused is None  # the default: fused where supported
    threads = torch.get_num_threads()
    try:
        for step in range(6):
            torch.set_num_threads(1 + step % 2)
            ids = torch.randint(0, 1000, (700,), generator=gen)
            values = torch.randn(700, 64, generator=gen, dtype=dtype)
            grad = torch.sparse_coo_tensor(ids[None], values, (2000, 64), check_invariants=True)
            if step % 3 == 2:  # clipping hands the optimiser coalesced gradients
                grad = grad.coalesce()
            for param, opt in ((params[0], fused), (params[1], plain)):
                param.grad = grad.clone()
                opt.step()
            assert numba.get_num_threads() == min(1 + step % 2, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(threads)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    torch.testing.assert_close(params[0].detach(), params[1].detach(), **tol)
    assert len(launches) == 6  # the default path is the compiled one; fused=False is not
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(fused.state[params[0]][key], plain.state[params[1]][key], **tol)
    assert not torch.equal(params[0].detach(), weight)  # it moved
    assert torch.equal(params[0].detach()[1000:], weight[1000:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_merge_sums_repeated_rows_as_index_add_does(dtype: torch.dtype) -> None:
    """The compiled pass sums a repeated row's values itself, in their order in the
    gradient: the weights and moments are bit for bit those of the same pass given the
    gradient merged first by ``index_add_`` (``merged_rows``), flagged coalesced or not (a
    coalesced gradient skips the sort), over steps with many repeats,
    few rows (fewer than the kernel's chunks) and many, on one thread and two. The values
    span six orders of magnitude, so another summation order gives other bits (checked)."""
    from funnelrec.train.adam_rows import merged_rows
    from funnelrec.train.sparse import LazyAdam

    gen = torch.Generator().manual_seed(4)
    weight = torch.randn(3000, 16, generator=gen, dtype=dtype)
    params = [nn.Parameter(weight.clone()) for _ in range(3)]
    raw, premerged, flagged = (LazyAdam([p], lr=0.01) for p in params)  # flagged: coalesced
    threads = torch.get_num_threads()
    try:
        for step, (n, high) in enumerate([(5000, 40), (20, 3000), (9000, 3000), (7, 5)]):
            torch.set_num_threads(1 + step % 2)
            ids = torch.randint(0, high, (n,), generator=gen)
            scale = 10.0 ** torch.empty(n, 1, dtype=dtype).uniform_(-3, 3, generator=gen)
            values = torch.randn(n, 16, generator=gen, dtype=dtype) * scale
            grad = torch.sparse_coo_tensor(ids[None], values, (3000, 16), check_invariants=True)
            rows, merged = merged_rows(grad)
            if step == 0:  # the order matters for these values
                flipped = torch.sparse_coo_tensor(
                    ids.flip(0)[None], values.flip(0), (3000, 16), check_invariants=True
                )
                assert not torch.equal(merged_rows(flipped)[1], merged)
            params[0].grad = grad
            params[1].grad = torch.sparse_coo_tensor(
                rows[None], merged, (3000, 16), check_invariants=True
            )
            params[2].grad = params[1].grad.coalesce()  # the pass skips its sort
            assert params[2].grad.is_coalesced() and not params[1].grad.is_coalesced()
            for opt in (raw, premerged, flagged):
                opt.step()
            for other, opt in ((params[1], premerged), (params[2], flagged)):
                assert torch.equal(params[0].detach(), other.detach())
                for key in ("exp_avg", "exp_avg_sq"):
                    assert torch.equal(raw.state[params[0]][key], opt.state[other][key])
    finally:
        torch.set_num_threads(threads)
    assert not torch.equal(params[0].detach(), weight)


def test_compiled_falls_back_to_no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba finds no writable cache directory (it raises at decoration), the kernel
    still compiles, without the disk cache, instead of failing the import."""
    import numba

    from funnelrec.compiled import compiled

    real = numba.njit
    asked: list[bool] = []

    def njit(**options: bool):  # type: ignore[no-untyped-def]
        asked.append(options.get("cache", False))
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real(**options)

    monkeypatch.setattr(numba, "njit", njit)

    def double(out, values):  # type: ignore[no-untyped-def]
        for i in numba.prange(values.shape[0]):
            out[i] = 2 * values[i]

    kernel = compiled(double, parallel=True)
    out = np.zeros(3)
    kernel(out, np.arange(3.0))
    assert asked == [True, False] and out.tolist() == [0.0, 2.0, 4.0]


@pytest.mark.parametrize(("chosen", "expected"), [(None, "workqueue"), ("omp", "omp")])
def test_threading_layer_is_the_work_queue_unless_the_user_chose_one(
    chosen: str | None, expected: str
) -> None:
    """numba's spinning OpenMP pool starves torch's on a small machine, so importing the
    kernel picks the work queue; an explicit ``NUMBA_THREADING_LAYER`` is left alone."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if chosen is not None:
        env["NUMBA_THREADING_LAYER"] = chosen
    code = "import numba, funnelrec.train.adam_rows; print(numba.config.THREADING_LAYER)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.strip() == expected
