"""The network spec of an evolved echo-state network: :class:`ESNSpec`, a genome that decodes to reservoirs.

The genome is what an :class:`~networks.esn.encodings.Encoding` decodes
(hyperparameters, topology or weights); the readout is not in it, it is
fitted in closed form on data for every genome. So the spec's work is to
turn a genome stack into block-diagonal reservoir stacks
(:meth:`ESNSpec.reservoir_stacks`) and, for one genome, a fitted network
(:meth:`ESNSpec.fit`, a :class:`~networks.esn.readout_spec.ESNReadoutSpec`
and its parameters). It has no forward pass of its own: without a readout a
genome has no outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from networks.esn.encodings import (
    ENCODINGS,
    Encoding,
    HyperparameterEncoding,
    TopologyEncoding,
    WeightsEncoding,
    encoding_from_description,
)
from networks.esn.readout import fit_readouts
from networks.esn.readout_spec import ESNReadoutSpec
from networks.esn.reservoir import Reservoir, ReservoirWeights, weights_to_vector
from networks.esn.stack import ReservoirStack
from networks.spec import HasComplexity, NetworkSpec

#: Rows (reservoirs x units) of one block-diagonal stack: small enough to stay
#: in cache; how genomes are grouped never changes a genome's numbers.
STACK_ROWS = 4096


def encoding_from_settings(
    mode: str,
    n_inputs: int,
    *,
    units: int,
    connectivity: float,
    spectral_radius: float,
    input_scaling: float,
    leak_rate: float,
    bias_scaling: float,
    ridge: float,
    seed: int,
    n_reservoirs: int = 1,
    min_units: int = 50,
    max_units: int = 500,
    rescale: bool = False,
) -> Encoding:
    """The encoding a run's settings name: ``mode`` and the reservoir recipe (the weights mode's reservoir)."""
    if mode == TopologyEncoding.name:
        return TopologyEncoding(
            bias_scaling=bias_scaling, seed=seed, n_reservoirs=n_reservoirs, n_inputs=n_inputs, min_units=min_units, max_units=max_units
        )
    if mode == HyperparameterEncoding.name:
        return HyperparameterEncoding(units=units, bias_scaling=bias_scaling, seed=seed, n_reservoirs=n_reservoirs, n_inputs=n_inputs)
    if mode == WeightsEncoding.name:
        reservoir = Reservoir(
            units=units,
            connectivity=connectivity,
            spectral_radius=spectral_radius,
            input_scaling=input_scaling,
            leak_rate=leak_rate,
            bias_scaling=bias_scaling,
            seed=seed,
            n_inputs=n_inputs,
        )
        return WeightsEncoding(reservoir, ridge=ridge, rescale=rescale)
    raise ValueError(f"ESN mode {mode!r} is not known; allowed: {sorted(ENCODINGS)}")


@dataclass(frozen=True)
class ESNSpec(NetworkSpec, HasComplexity):
    """An echo-state network whose genome is decoded by ``encoding``; ``n_outputs`` readout outputs."""

    encoding: Encoding
    n_outputs: int = 1
    structural_genome: ClassVar[bool] = True  # the genome encodes a reservoir (hyperparameters, topology or its weights)

    @classmethod
    def from_settings(cls, mode: str, n_inputs: int, n_outputs: int, **settings: Any) -> ESNSpec:
        """The spec of a run's settings: ``mode`` (hyperparameters, topology, weights) and the reservoir recipe."""
        return cls(encoding_from_settings(mode, n_inputs, **settings), int(n_outputs))

    # ---------------------------------------------------------------- layout
    @property
    def n_inputs(self) -> int:
        """Values read per step."""
        return self.encoding.n_inputs

    @property
    def n_params(self) -> int:
        """Genome length."""
        return self.encoding.n_params

    @property
    def reservoirs_per_genome(self) -> int:
        """Reservoirs one genome is scored on (their figures are averaged)."""
        return self.encoding.reservoirs_per_genome

    def initial_genome(self) -> np.ndarray:
        """The default recipe's genome."""
        return np.asarray(self.encoding.initial_genome(), dtype=np.float64)

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` copies of the default recipe's genome (deterministic; the strategy spreads them, ``rng`` unused)."""
        return np.tile(self.initial_genome(), (n, 1))

    def check(self, genomes: np.ndarray) -> np.ndarray:
        """``genomes`` as a float stack ``(P, n_params)``; a single genome becomes a stack of one."""
        genomes = np.asarray(genomes, dtype=np.float64)
        if genomes.ndim == 1:
            genomes = genomes[None]
        if genomes.ndim != 2 or genomes.shape[1] != self.n_params:
            raise ValueError(f"expected genomes of shape (P, {self.n_params}), got {genomes.shape}")
        return genomes

    # -------------------------------------------------------------- decoding
    def reservoir_stacks(self, genomes: np.ndarray) -> Iterator[tuple[np.ndarray, ReservoirStack, np.ndarray]]:
        """The reservoirs of a genome stack as block-diagonal stacks: ``(genome indices, stack, one ridge per reservoir)``.

        Reservoirs are genome-major in each stack (``reservoirs_per_genome``
        per genome); genomes of one reservoir size share stacks of at most
        about :data:`STACK_ROWS` rows.
        """
        genomes = self.check(genomes)
        group = max(1, STACK_ROWS // self.encoding.units_per_genome())
        for same_size in self.encoding.size_groups(genomes):
            for lo in range(0, len(same_size), group):
                idx = same_size[lo : lo + group]
                weights, ridges = self.encoding.weights(genomes[idx])
                yield idx, ReservoirStack(weights), ridges

    def reservoir(self, genome: np.ndarray) -> tuple[Reservoir, ReservoirWeights, float]:
        """A genome's first reservoir (hyperparameters, weights) and its ridge: the one its test figures use."""
        return self.encoding.reservoir(self.check(genome)[0], 0)

    def decoded(self, genome: np.ndarray) -> dict[str, Any]:
        """What a genome decodes to (hyperparameters, size, edges), JSON-able; empty for a weights genome."""
        return self.encoding.decoded(self.check(genome)[0])

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Expected recurrent edges of each genome's reservoir."""
        return self.encoding.complexity(self.check(genomes))

    def fit(self, genome: np.ndarray, inputs: np.ndarray, targets: np.ndarray, washout: int) -> tuple[ESNReadoutSpec, np.ndarray]:
        """A genome's first reservoir with its ridge readout fitted on ``inputs`` ``(T, n_in)`` -> ``targets`` after ``washout``.

        Returns the fitted network and its flat parameters (see
        :class:`~networks.esn.readout_spec.ESNReadoutSpec`).
        """
        reservoir, weights, ridge = self.reservoir(genome)
        W_out, _ = fit_readouts(ReservoirStack([weights]), inputs, targets, washout, np.array([ridge]))
        fitted = ESNReadoutSpec(reservoir, self.n_outputs)
        return fitted, fitted.pack(W_out[0], weights_to_vector(weights))

    # ------------------------------------------------------------ no forward
    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Not available: a genome has no readout; :meth:`fit` gives the fitted network that predicts."""
        raise TypeError("an ESN genome has no readout of its own: ESNSpec.fit(genome, inputs, targets, washout) gives the fitted network")

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Not available (see :meth:`forward`)."""
        return self.forward(params, x)

    # ----------------------------------------------------------- description
    def describe(self) -> dict[str, Any]:
        """The encoding's settings, the sizes and the reservoir seed."""
        sizes = {"n_inputs": self.n_inputs, "n_outputs": self.n_outputs, "n_params": self.n_params}
        return {"type": "esn", **sizes, **self.encoding.describe(), "seed": self.encoding.reservoir_seed}

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> ESNSpec:
        """Rebuild from :meth:`describe` output."""
        return cls(encoding_from_description(description), int(description["n_outputs"]))
