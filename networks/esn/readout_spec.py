"""A fitted echo-state network as a plain network spec: a fixed sparsity pattern, all weights in the parameters.

What an ESN run keeps of its best genome (``best_trained.json`` /
``best_trained.npz``): the reservoir's hyperparameters and seed (its
sparsity pattern and bias) in the description, and in the flat parameters

    [W_out (n_outputs x (1 + n_inputs + units)) row-major, W nonzeros (CSR order), W_in row-major]

so the model needs no eigen-solver and no data to predict. The forward pass
reads one series step by step, teacher-forced from a zero state: the batch
axis of :meth:`ESNReadoutSpec.forward` is time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from networks.esn.model import ESN
from networks.esn.readout import predict_readout
from networks.esn.reservoir import Reservoir, ReservoirWeights
from networks.esn.stack import ReservoirStack, as_sequences
from networks.spec import NetworkSpec


@dataclass(frozen=True)
class ESNReadoutSpec(NetworkSpec):
    """A reservoir of fixed pattern and its linear readout; the parameters hold every weight."""

    reservoir: Reservoir
    n_outputs: int = 1

    @property
    def n_inputs(self) -> int:
        """Values read per step."""
        return self.reservoir.n_inputs

    @property
    def n_features(self) -> int:
        """Readout features ``[1, u, x]`` per step."""
        return 1 + self.reservoir.n_inputs + self.reservoir.units

    @property
    def n_params(self) -> int:
        """Readout weights plus the reservoir's recurrent nonzeros and input weights."""
        return self.n_outputs * self.n_features + self.reservoir.n_weights

    def pack(self, W_out: np.ndarray, weight_vector: np.ndarray) -> np.ndarray:
        """Flat parameters from a readout ``(n_outputs, n_features)`` and a reservoir weight vector."""
        return np.concatenate([np.asarray(W_out, dtype=np.float64).reshape(-1), np.asarray(weight_vector, dtype=np.float64)])

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The readout ``(n_outputs, n_features)`` and the reservoir weight vector of one parameter vector."""
        params = np.asarray(params, dtype=np.float64).reshape(-1)
        if params.shape[0] != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters, got {params.shape[0]}")
        n_readout = self.n_outputs * self.n_features
        return params[:n_readout].reshape(self.n_outputs, self.n_features), params[n_readout:]

    def weights(self, params: np.ndarray) -> ReservoirWeights:
        """The reservoir's weights (bias from the seed) of one parameter vector."""
        return self.reservoir.weights_from_vector(self.split(params)[1])

    def model(self, params: np.ndarray) -> ESN:
        """A fitted :class:`~networks.esn.model.ESN` (``predict``, ``generate``, ``save``) of one parameter vector."""
        W_out, vector = self.split(params)
        return ESN(self.reservoir, weights=self.reservoir.weights_from_vector(vector)).load_readout({"W_out": W_out})

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` copies of the seed's own weights with a zero readout (deterministic; ``rng`` unused)."""
        return np.tile(self.pack(np.zeros((self.n_outputs, self.n_features)), self.reservoir.weight_vector()), (n, 1))

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, T, n_outputs)`` of a parameter stack ``(P, n_params)`` on one series ``(T, n_inputs)`` or ``(T,)``."""
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        U, rank = as_sequences(x)
        if rank == 3 or U.shape[2] != self.n_inputs:
            raise ValueError(f"inputs: expected one series of shape (T, {self.n_inputs}), got {np.shape(x)}")
        stack = ReservoirStack([self.weights(p) for p in params])
        states = stack.run(U)  # (P, 1, T, units)
        return np.stack([predict_readout(self.split(p)[0], states[i, 0], U[0]) for i, p in enumerate(params)])

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(T, n_outputs)`` of one parameter vector on one series, teacher-forced from a zero state."""
        return self.forward(np.asarray(params)[None], x)[0]

    def describe(self) -> dict[str, Any]:
        """The reservoir (pattern and bias come from its seed), the output width and the parameter layout."""
        return {
            "type": "esn_readout",
            "reservoir": self.reservoir.describe(),
            "n_outputs": self.n_outputs,
            "features": "[1, u, x] (bias, input, state)",
            "layout": "[W_out (n_outputs x features) row-major, W nonzeros in CSR order of the seed's pattern, W_in row-major]",
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> ESNReadoutSpec:
        """Rebuild from :meth:`describe` output."""
        return cls(Reservoir.from_description(description["reservoir"]), int(description["n_outputs"]))
