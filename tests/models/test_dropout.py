"""Counter-based dropout (``models.dropout``): rate, scaling, seeding, gradients, fallbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from funnelrec.models.dropout import Dropout, counter_dropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kept_elements_are_scaled_and_the_drop_rate_is_p(dtype: torch.dtype) -> None:
    x = torch.rand(64, 50, 64, dtype=dtype) + 0.5  # no zeros of its own
    out = counter_dropout(x, 0.2)
    kept = out != 0
    assert out.dtype == dtype and out.shape == x.shape
    torch.testing.assert_close(out[kept], x[kept] * (1 / 0.8), rtol=0, atol=0)
    # 204,800 Bernoulli(0.8) draws: sd of the rate 0.0009
    assert abs(kept.double().mean().item() - 0.8) < 0.005
    # no structure along any axis: every position's keep rate near 0.8
    assert kept.double().mean(dim=(0, 2)).sub(0.8).abs().max() < 0.03


def test_the_seed_fixes_the_masks_and_each_call_draws_a_new_one() -> None:
    x = torch.ones(1000)
    torch.manual_seed(3)
    a, b = counter_dropout(x, 0.5), counter_dropout(x, 0.5)
    torch.manual_seed(3)
    a2 = counter_dropout(x, 0.5)
    assert torch.equal(a, a2)
    assert not torch.equal(a, b)


def test_the_gradient_passes_through_the_same_mask() -> None:
    """d(sum(w * dropout(x)))/dx = w * mask / (1 - p), the forward pass's mask."""
    x = torch.rand(7, 33, dtype=torch.float64, requires_grad=True)
    w = torch.rand(7, 33, dtype=torch.float64)
    out = counter_dropout(x, 0.3)
    (out * w).sum().backward()
    assert x.grad is not None
    mask = (out != 0).double() / 0.7
    torch.testing.assert_close(x.grad, w * mask, rtol=0, atol=1e-15)


def test_non_contiguous_input_gives_the_mask_of_its_contiguous_copy() -> None:
    x = torch.rand(40, 30) + 0.5
    torch.manual_seed(0)
    a = counter_dropout(x.t(), 0.25)
    torch.manual_seed(0)
    b = counter_dropout(x.t().contiguous(), 0.25)
    assert torch.equal(a, b)


def test_identity_out_of_training_or_at_zero_and_bad_p_rejected() -> None:
    x = torch.rand(5, 5)
    assert counter_dropout(x, 0.4, training=False) is x
    assert counter_dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\), got 1.0"):
        counter_dropout(x, 1.0)


def test_other_dtypes_fall_back_to_torch_dropout() -> None:
    x = torch.rand(100, 100, dtype=torch.bfloat16) + 0.5
    torch.manual_seed(1)
    ours = counter_dropout(x, 0.3)
    torch.manual_seed(1)
    assert torch.equal(ours, F.dropout(x, 0.3, training=True))


def test_the_module_is_nn_dropout_unless_counter() -> None:
    """``Dropout(p)`` draws torch's masks (bit for bit ``nn.Dropout``); ``counter=True``
    the counter-based ones; both are identities in eval mode."""
    x = torch.rand(20, 20)
    torch.manual_seed(5)
    plain = Dropout(0.3)(x)
    torch.manual_seed(5)
    assert torch.equal(plain, torch.nn.Dropout(0.3)(x))
    torch.manual_seed(5)
    fast = Dropout(0.3, counter=True)(x)
    torch.manual_seed(5)
    assert torch.equal(fast, counter_dropout(x, 0.3))
    assert torch.equal(Dropout(0.3, counter=True).eval()(x), x)
    assert "counter=True" in repr(Dropout(0.3, counter=True))
