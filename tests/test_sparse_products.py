"""``csr_product_dense``: scipy's ``(a @ b).toarray()`` bit for bit, in one pass."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from funnelrec.sparse_products import csr_product_dense


def _random_csr(rng: np.random.Generator, shape: tuple[int, int], dtype: type) -> sp.csr_matrix:
    """CSR with empty rows, unsorted columns and duplicate entries (not canonical)."""
    n = shape[0] * shape[1] // 4
    rows = rng.integers(0, shape[0] - 2, n)  # the last two rows stay empty
    cols = rng.integers(0, shape[1], n)
    order = np.argsort(rows, kind="stable")  # rows grouped, columns left in random order
    data = rng.normal(size=n).astype(dtype)
    indptr = np.searchsorted(rows[order], np.arange(shape[0] + 1))
    mat = sp.csr_matrix((data[order], cols[order], indptr), shape=shape)
    assert not mat.has_canonical_format
    return mat


@pytest.mark.parametrize(
    ("a_dtype", "b_dtype"),
    [(np.float64, np.float32), (np.float32, np.float32), (np.float64, np.float64)],
)
def test_matches_scipy_bit_for_bit(a_dtype: type, b_dtype: type) -> None:
    rng = np.random.default_rng(0)
    a = _random_csr(rng, (37, 50), a_dtype)
    b = _random_csr(rng, (50, 61), b_dtype)
    got = csr_product_dense(a, b)
    want = np.asarray((a @ b).toarray(), dtype=np.float64)
    assert got.dtype == np.float64 and got.shape == (37, 61)
    assert np.array_equal(got, want)  # same summation order: not merely close
    assert not got[-2:].any()  # empty rows of a give zero rows


def test_product_of_dense_votes_with_a_binary_matrix_matches_scipy() -> None:
    """user-CF's second product: a dense similarity block made CSR, times binary items."""
    rng = np.random.default_rng(1)
    sim = np.where(rng.random((20, 30)) < 0.3, rng.random((20, 30)) ** 1.7, 0.0)
    items = sp.csr_matrix((rng.random((30, 40)) < 0.2).astype(np.float32))
    votes = sp.csr_matrix(sim)
    assert np.array_equal(csr_product_dense(votes, items), (votes @ items).toarray())


def test_shape_mismatch_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^cannot multiply \(2, 3\) by \(4, 5\)$"):
        csr_product_dense(sp.csr_matrix((2, 3)), sp.csr_matrix((4, 5)))
