"""Running reservoirs: :class:`ReservoirStack` runs P of them over S sequences at once.

The reservoir state ``x`` (``units``) follows the leaky-integrator update

    x[t] = (1 - a) x[t-1] + a tanh(W x[t-1] + W_in u[t] + b)

from ``x[-1] = 0`` (or a given state). P reservoirs of the same size run as
one block-diagonal sparse system over S sequences: one sparse-dense product
``W (P*units, P*units) @ X (P*units, S)`` per time step (SciPy's compiled CSR
kernel, see :mod:`networks.esn.csr_kernel`), no Python loop over sequences
or reservoirs. Each row of the product only sums that row's own nonzeros,
so a reservoir's states never depend on which other reservoirs or sequences
share the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from networks.esn.csr_kernel import block_diagonal, bound_accumulate
from networks.esn.reservoir import ReservoirWeights

#: Time steps per block when states are streamed (bounds memory to
#: ``P x S x block x units`` floats whatever the series length).
STATE_BLOCK = 256


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


def restore_rank(y: np.ndarray, rank: int) -> np.ndarray:
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
        self.W = block_diagonal([w.W for w in weights])
        self.W_in = np.concatenate([w.W_in for w in weights], axis=0)  # (P*units, n_in)
        self.bias = np.concatenate([w.bias for w in weights])  # (P*units,)
        leaks = np.array([float(w.leak_rate) for w in weights])
        self._leak: float | np.ndarray  # one rate for all reservoirs, or a column of per-row rates
        self._keep: float | np.ndarray
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
        matvec = bound_accumulate(self.W, x.shape[1])
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

    def iter_states(self, inputs: np.ndarray, initial_state: np.ndarray | None = None, block: int = STATE_BLOCK) -> Iterator[np.ndarray]:
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
