"""The echo-state network as an estimator: :class:`ESN` (``fit`` / ``predict`` / ``generate``, ``save`` / ``load``).

Jaeger, "The 'echo state' approach to analysing and training recurrent neural
networks", GMD Report 148 (2001); Lukoševičius, "A practical guide to
applying echo state networks" (2012).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from networks.esn.readout import closed_loop, fit_readout, predict_readout
from networks.esn.reservoir import Reservoir, ReservoirWeights, weights_to_vector
from networks.esn.stack import ReservoirStack, as_sequences, restore_rank


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

    def fit(self, u: np.ndarray, y: np.ndarray) -> ESN:
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
        return restore_rank(predict_readout(self.W_out_, states, U), rank)

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
            "type": "esn_estimator",
            "reservoir": self.reservoir.describe(),
            "ridge": self.ridge,
            "washout": self.washout,
            "explicit_weights": self.explicit_weights,
            "features": "[1, u, x] (bias, input, state)",
        }

    @classmethod
    def from_description(cls, description: dict, weights: ReservoirWeights | None = None) -> ESN:
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

    def load_readout(self, arrays: dict[str, np.ndarray]) -> ESN:
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
        np.savez(tmp, allow_pickle=False, description=np.array(json.dumps(self.describe())), **self.readout_arrays())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> ESN:
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
