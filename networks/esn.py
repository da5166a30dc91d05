"""Echo-state network (ESN): a fixed random leaky-tanh reservoir and a ridge readout.

Jaeger, "The 'echo state' approach to analysing and training recurrent neural
networks", GMD Report 148 (2001); Jaeger & Haas, "Harnessing nonlinearity",
Science 304 (2004); Lukoševičius, "A practical guide to applying echo state
networks" (2012).

The reservoir state ``x`` (``units``) follows the leaky-integrator update

    x[t] = (1 - a) x[t-1] + a tanh(W x[t-1] + W_in u[t] + b)

from ``x[-1] = 0`` (or a given state), and the output is a linear readout of
the features ``[1, u[t], x[t]]`` (bias, input, state):

    y[t] = W_out [1; u[t]; x[t]]

``W_out`` is fitted in closed form by ridge regression on teacher-forced
states: ``W_out^T = (X^T X + ridge I)^{-1} X^T Y`` (normal equations, solved by
Cholesky). Every feature, the bias included, is regularised.

Weights are a pure function of the :class:`Reservoir` hyperparameters and its
seed (independent random streams for the sparsity pattern, the nonzero values,
the eigen-solver's start vector, ``W_in`` and ``b``):

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
pattern, so a genome can be the reservoir's weights themselves.

Batching. :class:`ReservoirStack` runs P reservoirs of the same size as one
block-diagonal sparse system over S sequences at once: one sparse-dense
product ``W (P*units, P*units) @ X (P*units, S)`` per time step (scipy's
compiled CSR kernel, called directly), no Python loop over sequences or
reservoirs. Each row of the product only sums that
row's own nonzeros, so a reservoir's states never depend on which other
reservoirs or sequences share the batch.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigs

#: Reservoirs up to this size get their spectral radius from dense ``eigvals``
#: (faster than ARPACK there, and ARPACK needs k < n - 1).
DENSE_EIGVALS_MAX_UNITS = 128

#: Time steps per block when states are streamed (bounds memory to
#: ``P x S x block x units`` floats whatever the series length).
STATE_BLOCK = 256

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


# --------------------------------------------------------------------------- #
# Weights
# --------------------------------------------------------------------------- #
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


def spectral_radius(W: sp.spmatrix | np.ndarray, seed: int = 0) -> float:
    """Largest eigenvalue modulus of ``W``: ARPACK with a seeded start vector, dense for small ``W``."""
    n = W.shape[0]
    if n == 0:
        return 0.0
    if sp.issparse(W) and W.nnz == 0:
        return 0.0
    if n > DENSE_EIGVALS_MAX_UNITS:
        v0 = _rng(seed, _STREAM_V0).uniform(-1.0, 1.0, size=n)
        try:
            values = eigs(W, k=1, which="LM", v0=v0, maxiter=20 * n, return_eigenvectors=False)
            return float(np.max(np.abs(values)))
        except (ArpackNoConvergence, RuntimeError, ValueError):
            pass  # fall through to the dense solver
    dense = W.toarray() if sp.issparse(W) else np.asarray(W)
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
    def from_description(cls, description: dict) -> "Reservoir":
        """Rebuild from :meth:`describe` output."""
        fields = {k: v for k, v in description.items() if k != "type"}
        return cls(**fields)

    def replace(self, **changes) -> "Reservoir":
        """A copy with some hyperparameters changed."""
        return Reservoir(**{**asdict(self), **changes})


def weights_to_vector(weights: ReservoirWeights) -> np.ndarray:
    """Flat ``[W nonzeros (CSR order), W_in row-major]`` of concrete weights."""
    W = weights.W.tocsr()
    W.sort_indices()
    return np.concatenate([W.data, weights.W_in.reshape(-1)])


# --------------------------------------------------------------------------- #
# Running reservoirs
# --------------------------------------------------------------------------- #
def as_sequences(u: np.ndarray, name: str = "inputs") -> tuple[np.ndarray, int]:
    """``(S, T, d)`` view of a series given as ``(T,)``, ``(T, d)`` or ``(S, T, d)``, and its original rank."""
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim == 1:
        return arr[None, :, None], 1
    if arr.ndim == 2:
        return arr[None], 2
    if arr.ndim == 3:
        return arr, 3
    raise ValueError(f"{name}: expected shape (T,), (T, d) or (S, T, d), got {arr.shape}")


def _restore_rank(y: np.ndarray, rank: int) -> np.ndarray:
    """Inverse of :func:`as_sequences` for ``(S, T, d)`` outputs."""
    if rank == 1:
        return y[0, :, 0] if y.shape[2] == 1 else y[0]
    if rank == 2:
        return y[0]
    return y


class ReservoirStack:
    """P reservoirs of equal size and input width, run as one block-diagonal system.

    States are laid out ``(P * units, S)`` inside the loop; every public array
    has the reservoir axis first: states ``(P, S, T, units)``.
    """

    def __init__(self, weights: Sequence[ReservoirWeights]) -> None:
        weights = list(weights)
        if not weights:
            raise ValueError("ReservoirStack needs at least one reservoir")
        units, n_in = weights[0].units, weights[0].n_inputs
        for w in weights:
            if w.units != units or w.n_inputs != n_in:
                raise ValueError(f"all reservoirs of a stack need {units} units and {n_in} inputs; got {w.units} and {w.n_inputs}")
        self.P, self.units, self.n_inputs = len(weights), units, n_in
        self.W = _block_diagonal([w.W for w in weights])
        self.W_in = np.concatenate([w.W_in for w in weights], axis=0)  # (P*units, n_in)
        self.bias = np.concatenate([w.bias for w in weights])  # (P*units,)
        leaks = np.array([float(w.leak_rate) for w in weights])
        if np.all(leaks == leaks[0]):
            self._leak = float(leaks[0])
            self._keep = 1.0 - self._leak
        else:
            self._leak = np.repeat(leaks, units)[:, None]
            self._keep = 1.0 - self._leak

    @property
    def n_rows(self) -> int:
        """``P * units``: rows of the block-diagonal system."""
        return self.P * self.units

    def _drive(self, u: np.ndarray) -> np.ndarray:
        """``W_in u + b`` for inputs ``(L, S, n_in)`` shared by all reservoirs: ``(L, P*units, S)``.

        Summed input by input in a fixed order (not a BLAS product), so the
        closed loop (:meth:`step`) computes exactly the same numbers.
        """
        # Built (L, S, rows) so the inner loops run along the long axis, then
        # laid out (L, rows, S) (free when S == 1).
        drive = u[:, :, 0, None] * self.W_in[None, None, :, 0] + self.bias
        for k in range(1, self.n_inputs):
            drive += u[:, :, k, None] * self.W_in[None, None, :, k]
        return np.ascontiguousarray(drive.transpose(0, 2, 1))

    def _advance(self, x: np.ndarray, drive: np.ndarray, buf: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Run ``len(drive)`` steps from ``x``, states into ``buf``; returns the last state.

        One step: ``x <- (1 - a) x + a tanh(W x + drive[t])``. All arrays are
        C-contiguous ``(P*units, S)`` slices; names are bound locally because
        this loop is the hot path.
        """
        matvec = _bound_matvec(self.W, x.shape[1])
        tanh, copyto, multiply = np.tanh, np.copyto, np.multiply
        leaky = not (isinstance(self._leak, float) and self._leak == 1.0)
        keep, leak = self._keep, self._leak
        for t in range(len(drive)):
            out = buf[t]
            copyto(scratch, drive[t])
            matvec(x, scratch)  # scratch += W x
            tanh(scratch, out=scratch)
            if leaky:
                multiply(x, keep, out=out)
                scratch *= leak
                out += scratch
            else:
                copyto(out, scratch)
            x = out
        return x

    def _initial(self, initial_state: np.ndarray | None, S: int) -> np.ndarray:
        if initial_state is None:
            return np.zeros((self.n_rows, S))
        x0 = np.asarray(initial_state, dtype=np.float64)
        if x0.shape != (self.P, S, self.units):
            raise ValueError(f"initial_state: expected shape {(self.P, S, self.units)}, got {x0.shape}")
        return np.ascontiguousarray(x0.transpose(0, 2, 1).reshape(self.n_rows, S))

    def _to_public(self, block: np.ndarray) -> np.ndarray:
        """``(L, P*units, S)`` -> ``(P, S, L, units)``."""
        L, _, S = block.shape
        return np.ascontiguousarray(block.reshape(L, self.P, self.units, S).transpose(1, 3, 0, 2))

    def iter_states(
        self, inputs: np.ndarray, initial_state: np.ndarray | None = None, block: int = STATE_BLOCK
    ) -> Iterator[np.ndarray]:
        """Teacher-forced states in time blocks: yields ``(P, S, L, units)`` for inputs ``(S, T, n_in)``.

        The last yielded block ends with the final state.
        """
        u = np.asarray(inputs, dtype=np.float64)
        if u.ndim != 3 or u.shape[2] != self.n_inputs:
            raise ValueError(f"inputs: expected shape (S, T, {self.n_inputs}), got {u.shape}")
        S, T, _ = u.shape
        x = self._initial(initial_state, S)
        scratch = np.empty_like(x)
        u_time_major = u.transpose(1, 0, 2)  # (T, S, n_in)
        for start in range(0, T, block):
            L = min(block, T - start)
            drive = self._drive(u_time_major[start : start + L])
            buf = np.empty((L, self.n_rows, S))
            x = self._advance(x, drive, buf, scratch)
            yield self._to_public(buf)
            x = x.copy()  # the buffer is handed out; keep our own state

    def run(self, inputs: np.ndarray, initial_state: np.ndarray | None = None) -> np.ndarray:
        """All teacher-forced states ``(P, S, T, units)`` for inputs ``(S, T, n_in)``."""
        blocks = list(self.iter_states(inputs, initial_state))
        if not blocks:
            S = np.asarray(inputs).shape[0]
            return np.zeros((self.P, S, 0, self.units))
        return np.concatenate(blocks, axis=2)

    def step(self, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """One update: states ``(P, S, units)``, inputs ``(P, S, n_in)`` (one per reservoir) -> ``(P, S, units)``."""
        states = np.asarray(states, dtype=np.float64)
        u = np.asarray(inputs, dtype=np.float64)
        P, S = states.shape[:2]
        x = np.ascontiguousarray(states.transpose(0, 2, 1).reshape(self.n_rows, S))
        # Per-reservoir inputs, repeated over that reservoir's rows: (P*units, S, n_in).
        rows_u = np.repeat(u, self.units, axis=0)
        drive = rows_u[:, :, 0] * self.W_in[:, 0, None] + self.bias[:, None]
        for k in range(1, self.n_inputs):
            drive += rows_u[:, :, k] * self.W_in[:, k, None]
        buf = np.empty((1,) + x.shape)
        out = self._advance(x, np.ascontiguousarray(drive)[None], buf, np.empty_like(x))
        return out.reshape(P, self.units, S).transpose(0, 2, 1).copy()


def _accumulate_matvec_scipy(W: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> None:
    y += W @ x


def _accumulate_matvec_kernel(W: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> None:
    # scipy's compiled CSR kernels add W x onto y in place, row by row in the
    # order of each row's nonzeros (the same order for one vector or many);
    # calling them directly skips ~5 us of dispatch per call, a third of a
    # 500-unit time step.
    _bound_kernel(W, x.shape[1])(x, y)


def _bound_kernel(W: sp.csr_matrix, S: int):
    n, m = W.shape
    if S == 1:
        return partial(_sparsetools.csr_matvec, n, m, W.indptr, W.indices, W.data)
    return partial(_sparsetools.csr_matvecs, n, m, S, W.indptr, W.indices, W.data)


def _bound_matvec(W: sp.csr_matrix, S: int):
    """``f(x, y)``: ``y += W @ x`` for C-contiguous ``(n, S)`` arrays."""
    if _accumulate_matvec is _accumulate_matvec_kernel:
        return _bound_kernel(W, S)
    return partial(_accumulate_matvec, W)


def _pick_matvec():
    """The direct kernel if this scipy has it and it agrees with ``W @ x``; else plain scipy."""
    try:
        global _sparsetools
        from scipy.sparse import _sparsetools
    except ImportError:  # pragma: no cover - other scipy layouts
        return _accumulate_matvec_scipy
    try:
        W = sp.random(7, 7, density=0.4, format="csr", random_state=0)
        for S in (1, 3):
            x = np.arange(7.0 * S).reshape(7, S)
            y = np.ones((7, S))
            _bound_kernel(W, S)(x, y)
            if not np.allclose(y, 1.0 + W @ x, rtol=1e-14, atol=1e-14):
                return _accumulate_matvec_scipy
    except Exception:  # noqa: BLE001 - any mismatch in the private API: use the public one
        return _accumulate_matvec_scipy
    return _accumulate_matvec_kernel


#: ``y += W @ x`` in place for CSR ``W`` and C-contiguous ``(n, S)`` ``x``, ``y``.
_accumulate_matvec = _pick_matvec()


def _block_diagonal(matrices: Sequence[sp.spmatrix]) -> sp.csr_matrix:
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


# --------------------------------------------------------------------------- #
# Ridge readout
# --------------------------------------------------------------------------- #
def readout_features(inputs: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Features ``[1, u, x]``: inputs ``(..., n_in)`` and states ``(..., units)`` -> ``(..., 1 + n_in + units)``."""
    inputs = np.asarray(inputs, dtype=np.float64)
    states = np.asarray(states, dtype=np.float64)
    lead = np.broadcast_shapes(inputs.shape[:-1], states.shape[:-1])
    out = np.empty(lead + (1 + inputs.shape[-1] + states.shape[-1],))
    n_in = inputs.shape[-1]
    out[..., 0] = 1.0
    out[..., 1 : 1 + n_in] = inputs
    out[..., 1 + n_in :] = states
    return out


class RidgeAccumulator:
    """Normal equations ``X^T X``, ``X^T Y`` of P readouts, accumulated block by block."""

    def __init__(self, P: int, n_features: int, n_outputs: int) -> None:
        self.gram = np.zeros((P, n_features, n_features))
        self.cross = np.zeros((P, n_features, n_outputs))
        self.samples = 0

    def add(self, features: np.ndarray, targets: np.ndarray) -> None:
        """Add rows: features ``(P, N, F)``, targets ``(N, n_out)`` (shared) or ``(P, N, n_out)``."""
        if features.shape[1] == 0:
            return
        Xt = features.transpose(0, 2, 1)
        self.gram += Xt @ features  # per reservoir, a symmetric rank-N update
        self.cross += Xt @ targets
        self.samples += features.shape[1]

    def solve(self, ridge: float | np.ndarray) -> np.ndarray:
        """``W_out`` ``(P, n_out, F)``; ``ridge`` a scalar or one per readout."""
        P, F, _ = self.gram.shape
        ridges = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (P,))
        return np.stack([solve_ridge(self.gram[p], self.cross[p], float(ridges[p])) for p in range(P)])


def solve_ridge(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """``W_out`` ``(n_out, F)`` from ``(gram + ridge I) W_out^T = cross`` (Cholesky; least squares if not positive definite)."""
    A = gram + ridge * np.eye(gram.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        try:
            return scipy.linalg.solve(A, cross, assume_a="pos", check_finite=False).T
        except (np.linalg.LinAlgError, ValueError):
            # Numerically indefinite (ridge too small for the conditioning).
            return np.linalg.lstsq(A, cross, rcond=None)[0].T


def fit_readout(
    states: np.ndarray, targets: np.ndarray, ridge: float, washout: int = 0, inputs: np.ndarray | None = None
) -> np.ndarray:
    """Ridge readout ``W_out`` ``(n_out, F)`` on features ``[1, u, x]`` (``[1, x]`` without ``inputs``).

    ``states`` ``(S, T, units)`` (or ``(T, units)``), ``targets`` and
    ``inputs`` with the same leading axes; the first ``washout`` steps of every
    sequence are left out.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 2:
        states = states[None]
    S, T, _ = states.shape
    Y, _ = as_sequences(targets, "targets")
    if Y.shape[:2] != (S, T):
        raise ValueError(f"targets: expected leading shape {(S, T)}, got {Y.shape}")
    if inputs is None:
        U = np.zeros((S, T, 0))
    else:
        U, _ = as_sequences(inputs, "inputs")
        if U.shape[:2] != (S, T):
            raise ValueError(f"inputs: expected leading shape {(S, T)}, got {U.shape}")
    if not 0 <= washout < T:
        raise ValueError(f"washout = {washout}: must be in [0, {T}) for sequences of {T} steps")
    X = readout_features(U[:, washout:], states[:, washout:]).reshape(1, S * (T - washout), -1)
    acc = RidgeAccumulator(1, X.shape[2], Y.shape[2])
    acc.add(X, Y[:, washout:].reshape(S * (T - washout), -1))
    return acc.solve(ridge)[0]


def predict_readout(W_out: np.ndarray, states: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
    """Outputs ``(..., n_out)`` of readout ``W_out`` ``(n_out, F)`` on states ``(..., units)``."""
    states = np.asarray(states, dtype=np.float64)
    if inputs is None:
        inputs = np.zeros(states.shape[:-1] + (0,))
    return readout_features(inputs, states) @ W_out.T


def nrmse(prediction: np.ndarray, target: np.ndarray, variance: float | None = None) -> float:
    """Normalised root-mean-square error (Jaeger): ``sqrt(mean((y - d)^2) / var(d))``.

    ``variance`` overrides ``var(target)`` (e.g. the variance of the whole
    signal when ``target`` is a handful of values).
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    var = float(np.var(target)) if variance is None else float(variance)
    if var <= 0.0:
        raise ValueError("nrmse: the target has zero variance")
    return float(np.sqrt(np.mean((prediction - target) ** 2) / var))


def closed_loop(stack: ReservoirStack, W_out: np.ndarray, steps: int, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Free run of one reservoir (``stack.P == 1``) and readout ``W_out`` ``(n_out, F)``, batched over S start points.

    ``states`` ``(S, units)`` are the states after reading ``inputs``
    ``(S, n_in)``; each step's output is the next input. Returns
    ``(S, steps, n_out)``.
    """
    if stack.P != 1:
        raise ValueError(f"closed_loop runs one reservoir; the stack holds {stack.P}")
    n_out = W_out.shape[0]
    if n_out != stack.n_inputs:
        raise ValueError(f"closed loop: the readout has {n_out} outputs but the reservoir reads {stack.n_inputs} inputs")
    x = np.asarray(states, dtype=np.float64).reshape(-1, stack.units)
    u = np.asarray(inputs, dtype=np.float64).reshape(-1, stack.n_inputs)
    if x.shape[0] != u.shape[0]:
        raise ValueError(f"closed loop: {x.shape[0]} states but {u.shape[0]} inputs")
    steps = int(steps)
    out = np.empty((x.shape[0], steps, n_out))
    # A poor readout can make the loop diverge (the input feeds back
    # linearly): that is a result (inf / nan errors), not a failure.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            u = predict_readout(W_out, x, u)  # the next input
            out[:, k] = u
            if k + 1 < steps:
                x = stack.step(x[None], u[None])[0]
    return out


# --------------------------------------------------------------------------- #
# The estimator
# --------------------------------------------------------------------------- #
class ESN:
    """Echo-state network: a :class:`Reservoir` plus a ridge readout fitted by :meth:`fit`.

    ``washout`` steps at the start of every training sequence are left out of
    the fit (the state still remembers the arbitrary zero start there).
    ``weights`` overrides the seed's weights (e.g. evolved ones, see
    :meth:`Reservoir.weights_from_vector`). Learned state: ``W_out_``
    ``(n_out, 1 + n_in + units)``, and ``last_state_`` / ``last_input_`` at
    the end of the training sequences (where :meth:`generate` continues).
    """

    def __init__(self, reservoir: Reservoir, ridge: float = 1e-8, washout: int = 100, weights: ReservoirWeights | None = None) -> None:
        if not ridge >= 0.0:
            raise ValueError(f"ridge = {ridge!r}: must be >= 0")
        if int(washout) < 0:
            raise ValueError(f"washout = {washout!r}: must be >= 0")
        self.reservoir = reservoir
        self.ridge = float(ridge)
        self.washout = int(washout)
        self.explicit_weights = weights is not None
        self.weights = weights if weights is not None else reservoir.build()
        if self.weights.units != reservoir.units or self.weights.n_inputs != reservoir.n_inputs:
            raise ValueError("weights: their shape does not match the reservoir's units and n_inputs")
        self._stack = ReservoirStack([self.weights])

    # ------------------------------------------------------------ running
    def run(self, u: np.ndarray, initial_state: np.ndarray | None = None) -> np.ndarray:
        """Teacher-forced states ``(S, T, units)`` (``(T, units)`` for an unbatched series)."""
        U, rank = as_sequences(u)
        self._check_inputs(U)
        x0 = None if initial_state is None else self._batched_state(initial_state, U.shape[0])[None]
        states = self._stack.run(U, x0)[0]
        return states[0] if rank < 3 else states

    def readout(self, u: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Outputs of the fitted readout for inputs and their states (same leading axes)."""
        self._check_fitted()
        return predict_readout(self.W_out_, states, self._inputs_like(u, states))

    def fit(self, u: np.ndarray, y: np.ndarray) -> "ESN":
        """Teacher-forced run over ``u`` and a ridge fit of ``W_out`` to ``y``; returns ``self``."""
        U, _ = as_sequences(u)
        Y, _ = as_sequences(y, "targets")
        self._check_inputs(U)
        if Y.shape[:2] != U.shape[:2]:
            raise ValueError(f"targets: expected leading shape {U.shape[:2]}, got {Y.shape[:2]}")
        states = self._stack.run(U)[0]
        self.W_out_ = fit_readout(states, Y, self.ridge, self.washout, U)
        self.last_state_ = states[:, -1].copy()
        self.last_input_ = U[:, -1].copy()
        return self

    def predict(self, u: np.ndarray, initial_state: np.ndarray | None = None) -> np.ndarray:
        """One-step outputs for every step of ``u`` (same rank as ``u``), from ``initial_state`` or zero."""
        self._check_fitted()
        U, rank = as_sequences(u)
        self._check_inputs(U)
        x0 = None if initial_state is None else self._batched_state(initial_state, U.shape[0])[None]
        states = self._stack.run(U, x0)[0]
        return _restore_rank(predict_readout(self.W_out_, states, U), rank)

    def generate(self, steps: int, last_state: np.ndarray | None = None, last_input: np.ndarray | None = None) -> np.ndarray:
        """Closed loop: ``steps`` outputs fed back as the next inputs, batched over S start points.

        ``last_state`` ``(S, units)`` is the state after reading
        ``last_input`` ``(S, n_in)``; both default to the end of the training
        sequences. Output ``(S, steps, n_out)``; needs ``n_out == n_in``
        (the readout predicts the next input).
        """
        self._check_fitted()
        x = self.last_state_ if last_state is None else last_state
        u = self.last_input_ if last_input is None else last_input
        return closed_loop(self._stack, self.W_out_, steps, x, u)

    # --------------------------------------------------------- persistence
    def describe(self) -> dict:
        """JSON-able hyperparameters; the reservoir's weights are rebuilt from its seed."""
        return {
            "type": "esn",
            "reservoir": self.reservoir.describe(),
            "ridge": self.ridge,
            "washout": self.washout,
            "explicit_weights": self.explicit_weights,
            "features": "[1, u, x] (bias, input, state)",
        }

    @classmethod
    def from_description(cls, description: dict, weights: ReservoirWeights | None = None) -> "ESN":
        """Rebuild (unfitted) from :meth:`describe` output; pass ``weights`` if they were explicit."""
        if description.get("explicit_weights") and weights is None:
            raise ValueError("this ESN had explicit weights: pass them (see ESN.load, which stores them)")
        return cls(Reservoir.from_description(description["reservoir"]), description["ridge"], description["washout"], weights)

    def readout_arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays (``W_out`` and, for explicit weights, the weight vector)."""
        self._check_fitted()
        arrays = {"W_out": self.W_out_, "last_state": self.last_state_, "last_input": self.last_input_}
        if self.explicit_weights:
            arrays["weight_vector"] = weights_to_vector(self.weights)
        return arrays

    def load_readout(self, arrays: dict[str, np.ndarray]) -> "ESN":
        """Set ``W_out_`` (and the last state/input if present) from :meth:`readout_arrays` output."""
        W_out = np.asarray(arrays["W_out"], dtype=np.float64)
        F = 1 + self.reservoir.n_inputs + self.reservoir.units
        if W_out.ndim != 2 or W_out.shape[1] != F:
            raise ValueError(f"W_out: expected shape (n_out, {F}), got {W_out.shape}")
        self.W_out_ = W_out
        if "last_state" in arrays:
            self.last_state_ = np.asarray(arrays["last_state"], dtype=np.float64)
            self.last_input_ = np.asarray(arrays["last_input"], dtype=np.float64)
        return self

    def save(self, path: str | Path) -> None:
        """Description (JSON string) and arrays in one ``.npz``, written atomically; no pickle."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, description=np.array(json.dumps(self.describe())), **self.readout_arrays())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> "ESN":
        """Inverse of :meth:`save` (the reservoir is rebuilt from its seed or the stored weights)."""
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        description = json.loads(str(arrays.pop("description")))
        weights = None
        if description.get("explicit_weights"):
            reservoir = Reservoir.from_description(description["reservoir"])
            weights = reservoir.weights_from_vector(arrays["weight_vector"])
        return cls.from_description(description, weights).load_readout(arrays)

    # ------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "W_out_"):
            raise RuntimeError("this ESN is not fitted yet: call fit(u, y) first (or load_readout)")

    def _check_inputs(self, U: np.ndarray) -> None:
        if U.shape[2] != self.reservoir.n_inputs:
            raise ValueError(f"inputs: the reservoir reads {self.reservoir.n_inputs} inputs, got {U.shape[2]}")

    def _batched_state(self, state: np.ndarray, S: int) -> np.ndarray:
        x = np.asarray(state, dtype=np.float64).reshape(-1, self.reservoir.units)
        if x.shape[0] == 1 and S > 1:
            x = np.repeat(x, S, axis=0)
        if x.shape[0] != S:
            raise ValueError(f"initial_state: expected {S} states of {self.reservoir.units} units, got shape {np.shape(state)}")
        return x

    def _inputs_like(self, u: np.ndarray, states: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        states = np.asarray(states)
        if u.ndim == states.ndim - 1:  # a 1-D series with a single input
            u = u[..., None]
        return u
