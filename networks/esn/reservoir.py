"""A reservoir's hyperparameters (:class:`Reservoir`) and the concrete weights they build (:class:`ReservoirWeights`).

Weights are a pure function of the hyperparameters and the seed (independent
random streams for the sparsity pattern, the nonzero values, the
eigen-solver's start vector, ``W_in`` and ``b``):

* the pattern is Bernoulli(``connectivity``) per position, decided by a
  uniform key per position (``key < connectivity``), so raising the
  connectivity of a seed only adds connections, and each connection keeps its
  uniform(-1, 1) value: patterns are nested, a smooth axis for a search;
* ``W`` is rescaled to ``spectral_radius`` with ARPACK
  (``scipy.sparse.linalg.eigs``, start vector drawn from the seed), or dense
  ``eigvals`` for small reservoirs or when ARPACK does not converge;
* ``W_in`` (``units x n_inputs``) is dense uniform(-1, 1) x ``input_scaling``;
  ``b`` uniform(-1, 1) x ``bias_scaling``.

:meth:`Reservoir.weights_from_vector` builds a reservoir from an explicit flat
vector ``[nonzeros of W in CSR order, W_in row-major]`` on the seed's sparsity
pattern, so a genome (or a saved model) can be the reservoir's weights themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TypeGuard

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigs

#: Reservoirs up to this size get their spectral radius from dense ``eigvals``
#: (faster than ARPACK there, and ARPACK needs k < n - 1).
DENSE_EIGVALS_MAX_UNITS = 128

# Independent random streams of one reservoir seed.
_STREAM_PATTERN = 1
_STREAM_VALUES = 2
_STREAM_V0 = 3
_STREAM_INPUT = 4
_STREAM_BIAS = 5

# Elements of the units x units key / value matrices drawn at a time (bounds
# memory; the draws are sequential, so the block size never changes them).
_PATTERN_BLOCK_ELEMENTS = 1 << 20


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


@lru_cache(maxsize=16)
def _pattern(units: int, connectivity: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli(connectivity) pattern from one uniform key per position (``key < connectivity``)."""
    key_rng = _rng(seed, _STREAM_PATTERN)
    block = max(1, _PATTERN_BLOCK_ELEMENTS // units)
    rows, cols = [], []
    for start in range(0, units, block):
        m = min(block, units - start)
        r, c = np.nonzero(key_rng.random((m, units)) < connectivity)
        rows.append(r + start)
        cols.append(c)
    rows_a = np.concatenate(rows).astype(np.int32)
    cols_a = np.concatenate(cols).astype(np.int32)
    rows_a.flags.writeable = False
    cols_a.flags.writeable = False
    return rows_a, cols_a


@dataclass(frozen=True)
class ReservoirWeights:
    """The concrete weights of one reservoir: ``W`` (CSR), ``W_in``, ``b`` and the leak rate."""

    W: sp.csr_matrix
    W_in: np.ndarray
    bias: np.ndarray
    leak_rate: float

    @property
    def units(self) -> int:
        """Number of reservoir units."""
        return int(self.W.shape[0])

    @property
    def n_inputs(self) -> int:
        """Input width."""
        return int(self.W_in.shape[1])


def _is_sparse(W: sp.spmatrix | np.ndarray) -> TypeGuard[sp.spmatrix]:
    """``sp.issparse`` as a type guard (scipy has no type information)."""
    return bool(sp.issparse(W))


def spectral_radius(W: sp.spmatrix | np.ndarray, seed: int = 0) -> float:
    """Largest eigenvalue modulus of ``W``: ARPACK with a seeded start vector, dense for small ``W``."""
    n = W.shape[0]
    if n == 0:
        return 0.0
    if _is_sparse(W) and W.nnz == 0:
        return 0.0
    if n > DENSE_EIGVALS_MAX_UNITS:
        v0 = _rng(seed, _STREAM_V0).uniform(-1.0, 1.0, size=n)
        try:
            values = eigs(W, k=1, which="LM", v0=v0, maxiter=20 * n, return_eigenvectors=False)
            return float(np.max(np.abs(values)))
        except (ArpackNoConvergence, RuntimeError, ValueError):
            pass  # fall through to the dense solver
    dense = W.toarray() if _is_sparse(W) else np.asarray(W)
    return float(np.max(np.abs(np.linalg.eigvals(dense))))


@dataclass(frozen=True)
class Reservoir:
    """Hyperparameters of a reservoir; :meth:`build` turns them (and the seed) into weights.

    ``connectivity`` is the probability that a recurrent weight is nonzero
    (the expected fraction of nonzeros); ``leak_rate`` is ``a`` in the update;
    ``n_inputs`` is the input width (``W_in`` is ``units x n_inputs``).

    The defaults are the project's recipe for one-step Mackey-Glass
    prediction on standardised data (with ``ridge=1e-8``): 500 units, about
    10 nonzeros per row, spectral radius 1, leak 0.3, input scaling 0.5.
    """

    units: int = 500
    connectivity: float = 0.02
    spectral_radius: float = 1.0
    input_scaling: float = 0.5
    leak_rate: float = 0.3
    bias_scaling: float = 0.2
    seed: int = 0
    n_inputs: int = 1

    def __post_init__(self) -> None:
        problems = []
        if int(self.units) < 1:
            problems.append(f"units = {self.units!r}: must be >= 1")
        if not 0.0 < float(self.connectivity) <= 1.0:
            problems.append(f"connectivity = {self.connectivity!r}: must be in (0, 1]")
        if not float(self.spectral_radius) >= 0.0:
            problems.append(f"spectral_radius = {self.spectral_radius!r}: must be >= 0")
        if not float(self.input_scaling) >= 0.0:
            problems.append(f"input_scaling = {self.input_scaling!r}: must be >= 0")
        if not 0.0 < float(self.leak_rate) <= 1.0:
            problems.append(f"leak_rate = {self.leak_rate!r}: must be in (0, 1]")
        if not float(self.bias_scaling) >= 0.0:
            problems.append(f"bias_scaling = {self.bias_scaling!r}: must be >= 0")
        if int(self.seed) < 0:
            problems.append(f"seed = {self.seed!r}: must be >= 0")
        if int(self.n_inputs) < 1:
            problems.append(f"n_inputs = {self.n_inputs!r}: must be >= 1")
        if problems:
            raise ValueError("Reservoir: " + "; ".join(problems))
        for name in ("units", "seed", "n_inputs"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("connectivity", "spectral_radius", "input_scaling", "leak_rate", "bias_scaling"):
            object.__setattr__(self, name, float(getattr(self, name)))

    # ----------------------------------------------------------- structure
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the nonzero recurrent weights, in CSR (row-major) order (read-only)."""
        return _pattern(self.units, self.connectivity, self.seed)

    def _pattern_and_values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = self.pattern()
        n = self.units
        val_rng = _rng(self.seed, _STREAM_VALUES)
        # A value for every position, drawn in the same row blocks as the
        # keys, so each connection keeps its value whatever the connectivity.
        block = max(1, _PATTERN_BLOCK_ELEMENTS // n)
        bounds = np.searchsorted(rows, np.arange(0, n + block, block))
        vals = []
        for b, start in enumerate(range(0, n, block)):
            m = min(block, n - start)
            raw = val_rng.uniform(-1.0, 1.0, size=(m, n))
            lo, hi = bounds[b], bounds[b + 1]
            vals.append(raw[rows[lo:hi] - start, cols[lo:hi]])
        return rows, cols, np.concatenate(vals)

    @property
    def n_recurrent(self) -> int:
        """Number of nonzero recurrent weights of this seed's pattern."""
        return len(self.pattern()[0])

    @property
    def n_weights(self) -> int:
        """Length of the flat weight vector: nonzeros of ``W`` plus ``W_in``."""
        return self.n_recurrent + self.units * self.n_inputs

    # -------------------------------------------------------------- builds
    def _csr(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        n = self.units
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        # Copies: the cached pattern is read-only and scipy may sort in place.
        return sp.csr_matrix((np.array(values, dtype=np.float64), np.array(cols), indptr), shape=(n, n))

    def _input_and_bias(self) -> tuple[np.ndarray, np.ndarray]:
        W_in = _rng(self.seed, _STREAM_INPUT).uniform(-1.0, 1.0, size=(self.units, self.n_inputs)) * self.input_scaling
        bias = _rng(self.seed, _STREAM_BIAS).uniform(-1.0, 1.0, size=self.units) * self.bias_scaling
        return W_in, bias

    def _rescaled(self, W: sp.csr_matrix) -> sp.csr_matrix:
        radius = spectral_radius(W, self.seed)
        if radius > 0.0:
            W = W * (self.spectral_radius / radius)
        return W.tocsr()

    def build(self) -> ReservoirWeights:
        """The seed's weights, ``W`` rescaled to ``spectral_radius``."""
        rows, cols, values = self._pattern_and_values()
        W = self._rescaled(self._csr(rows, cols, values))
        W_in, bias = self._input_and_bias()
        return ReservoirWeights(W, W_in, bias, self.leak_rate)

    def weight_vector(self) -> np.ndarray:
        """The flat vector ``[W nonzeros (CSR order), W_in row-major]`` of :meth:`build`'s weights."""
        return weights_to_vector(self.build())

    def weights_from_vector(self, vector: np.ndarray, rescale: bool = False) -> ReservoirWeights:
        """Weights from an explicit flat vector on this seed's pattern; ``b`` comes from the seed.

        With ``rescale`` the recurrent part is rescaled to ``spectral_radius``
        (the vector then only sets its shape); otherwise it is used as is.
        """
        rows, cols = self.pattern()
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        n_rec = len(rows)
        expected = n_rec + self.units * self.n_inputs
        if vector.shape[0] != expected:
            raise ValueError(
                f"expected a weight vector of {expected} values ({n_rec} recurrent + {self.units * self.n_inputs} input), "
                f"got {vector.shape[0]}"
            )
        W = self._csr(rows, cols, vector[:n_rec])
        if rescale:
            W = self._rescaled(W)
        W_in = vector[n_rec:].reshape(self.units, self.n_inputs).copy()
        _, bias = self._input_and_bias()
        return ReservoirWeights(W, W_in, bias, self.leak_rate)

    # --------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able hyperparameters (weights are rebuilt from the seed)."""
        return {"type": "reservoir", **asdict(self)}

    @classmethod
    def from_description(cls, description: dict) -> Reservoir:
        """Rebuild from :meth:`describe` output."""
        fields = {k: v for k, v in description.items() if k != "type"}
        return cls(**fields)

    def replace(self, **changes) -> Reservoir:
        """A copy with some hyperparameters changed."""
        return Reservoir(**{**asdict(self), **changes})


def weights_to_vector(weights: ReservoirWeights) -> np.ndarray:
    """Flat ``[W nonzeros (CSR order), W_in row-major]`` of concrete weights."""
    W = weights.W.tocsr()
    W.sort_indices()
    return np.concatenate([W.data, weights.W_in.reshape(-1)])
