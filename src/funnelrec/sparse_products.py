"""Sparse products written straight into a dense block (compiled with numba).

scipy's CSR ``@`` CSR builds a sparse result in two passes (count, then fill) over an upcast
copy of both operands; a request-sized batch that then calls ``toarray()`` pays for a sparse
matrix it never uses. ``csr_product_dense`` adds each product into a zero ``[B, N]`` block
in one pass, in the same order as scipy (for row ``b``, ``A``'s entries in stored order, each
times ``B``'s row in stored order, in the operands' common dtype), so the values are scipy's
bit for bit. Serial, and it releases the GIL: it runs on the serving funnel's thread beside
the event loop.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


def csr_product_dense(a: sp.csr_matrix, b: sp.csr_matrix) -> npt.NDArray[np.float64]:
    """``(a @ b).toarray()`` as float64: ``a [B, K]``, ``b [K, N]`` CSR (float dtypes,
    computed in their common one as by scipy; duplicate entries are summed) -> ``[B, N]``."""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply {a.shape} by {b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)  # scipy's: float32 @ float32 stays float32
    out = np.zeros((a.shape[0], b.shape[1]), dtype=dtype)
    _accumulate(
        a.indptr.astype(np.int64, copy=False),
        a.indices.astype(np.int64, copy=False),
        a.data,
        b.indptr.astype(np.int64, copy=False),
        b.indices.astype(np.int64, copy=False),
        b.data,
        out,
    )
    return out.astype(np.float64, copy=False)


@numba.njit(cache=True, nogil=True)
def _accumulate(
    a_indptr: np.ndarray,
    a_indices: np.ndarray,
    a_data: np.ndarray,
    b_indptr: np.ndarray,
    b_indices: np.ndarray,
    b_data: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; covered through csr_product_dense
    for row in range(out.shape[0]):
        for p in range(a_indptr[row], a_indptr[row + 1]):
            k = a_indices[p]
            weight = a_data[p]
            for q in range(b_indptr[k], b_indptr[k + 1]):
                out[row, b_indices[q]] += weight * b_data[q]  # promoted as numpy would
