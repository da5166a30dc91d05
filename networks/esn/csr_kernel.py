"""``y += W @ x`` in place for a CSR ``W``: the hot step of every reservoir, and block-diagonal stacks.

Why a private SciPy function. SciPy's compiled CSR kernels
(``scipy.sparse._sparsetools.csr_matvec`` / ``csr_matvecs``) add ``W x`` onto
``y`` in place, row by row, in the order of each row's nonzeros. The public
``W @ x`` calls the very same kernels on a fresh zero array, after about
5 us of Python dispatch per call: a third of a 500-unit time step, paid
thousands of times per fitness evaluation. So the fast path calls the
kernel directly, and ``y`` starts as the step's drive ``W_in u + b``.

The fallback, used when the private module is missing or disagrees, stays
on public API and gives the same numbers bit for bit: ``[I | W] @ [y; x]``,
each row's identity entry first, sums ``y_i`` and then the row's nonzeros in
the kernel's own order. It is only slower. ``tests/test_esn.py`` fails
loudly if a SciPy upgrade makes :data:`PRIVATE_KERNEL` False (the run got
slower, not different) or makes the two paths disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import scipy.sparse as sp

#: ``f(x, y)``: ``y += W @ x`` for C-contiguous ``(n, S)`` float64 arrays ``x`` and ``y``.
Accumulate = Callable[[np.ndarray, np.ndarray], None]


def _private_kernel(W: sp.csr_matrix, S: int) -> Accumulate:
    from scipy.sparse import _sparsetools

    n, m = W.shape
    if S == 1:
        return partial(_sparsetools.csr_matvec, n, m, W.indptr, W.indices, W.data)
    return partial(_sparsetools.csr_matvecs, n, m, S, W.indptr, W.indices, W.data)


def _public_product(W: sp.csr_matrix, S: int) -> Accumulate:
    n, m = W.shape
    indptr = W.indptr.astype(np.int64) + np.arange(n + 1)
    first = indptr[:-1]
    rest = np.ones(W.nnz + n, dtype=bool)
    rest[first] = False
    indices = np.empty(W.nnz + n, dtype=np.int64)
    data = np.empty(W.nnz + n)
    indices[first], data[first] = np.arange(n), 1.0
    indices[rest], data[rest] = W.indices + n, W.data
    augmented = sp.csr_matrix((data, indices, indptr), shape=(n, n + m))  # [I | W], identity entries first

    def accumulate(x: np.ndarray, y: np.ndarray) -> None:
        y[...] = augmented @ np.concatenate([y, x])

    return accumulate


def _private_kernel_works() -> bool:
    """True if the private kernel imports and matches the public product bit for bit."""
    try:
        W = sp.random(7, 7, density=0.4, format="csr", random_state=0)
        for S in (1, 3):
            x = np.arange(7.0 * S).reshape(7, S) / 3.0
            y_private, y_public = np.full((7, S), 0.1), np.full((7, S), 0.1)
            _private_kernel(W, S)(x, y_private)
            _public_product(W, S)(x, y_public)
            if not np.array_equal(y_private, y_public):
                return False
    except Exception:  # noqa: BLE001 - any change in the private API: use the public path
        return False
    return True


#: Whether :func:`bound_accumulate` uses SciPy's private kernel (the fast path) on this SciPy.
PRIVATE_KERNEL = _private_kernel_works()


def bound_accumulate(W: sp.csr_matrix, S: int, private: bool | None = None) -> Accumulate:
    """``f(x, y)``: ``y += W @ x`` for ``(n, S)`` arrays, bound to ``W`` once (``private``: force a path)."""
    use_private = PRIVATE_KERNEL if private is None else private
    return _private_kernel(W, S) if use_private else _public_product(W, S)


def block_diagonal(matrices: Sequence[sp.spmatrix]) -> sp.csr_matrix:
    """Block-diagonal CSR of equal-size square CSR blocks (rows keep their own nonzeros, in order)."""
    if len(matrices) == 1:
        W = sp.csr_matrix(matrices[0], dtype=np.float64)
        W.sort_indices()
        return W
    n = matrices[0].shape[0]
    indptr = [np.zeros(1, dtype=np.int64)]
    indices, data = [], []
    offset = 0
    for p, M in enumerate(matrices):
        M = sp.csr_matrix(M, dtype=np.float64)
        M.sort_indices()
        indptr.append(M.indptr[1:].astype(np.int64) + offset)
        indices.append(M.indices.astype(np.int64) + p * n)
        data.append(M.data)
        offset += M.nnz
    N = n * len(matrices)
    idx_dtype = np.int32 if max(N, offset) < 2**31 else np.int64
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices).astype(idx_dtype), np.concatenate(indptr).astype(idx_dtype)), shape=(N, N)
    )
