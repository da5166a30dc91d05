"""What an ESN genome encodes: a reservoir's hyperparameters, its topology as well, or its weights.

Every encoding has the same small interface (:class:`Encoding`): the genome
length, the starting genome (the default recipe), and the reservoirs (weights
and ridge) a genome decodes to. Decoding is deterministic: reservoir seeds
are fixed, so fitness is a noise-free function of the genome.

(a) :class:`HyperparameterEncoding` -- 5 unconstrained genes mapped to
    spectral radius, leak rate, input scaling, connectivity and ridge by
    :class:`HyperparameterSpace`; ``n_reservoirs`` seeds per genome.
(c) :class:`TopologyEncoding` -- those 5 and a sixth gene for the size.
(b) :class:`WeightsEncoding` -- a small reservoir's nonzero recurrent weights
    plus its input weights on a fixed sparsity pattern.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from networks.esn.reservoir import Reservoir, ReservoirWeights

#: The default recipe: a 500-unit reservoir for one-step Mackey-Glass prediction
#: on standardised data (measured in benchmarks/esn_speed.py), and its ridge.
DEFAULT_RESERVOIR = Reservoir()
DEFAULT_RIDGE = 1e-8


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class HyperparameterSpace:
    """Unconstrained genes ``z`` (5) -> reservoir hyperparameters, by these transforms:

    * ``spectral_radius = max_spectral_radius * sigmoid(z0)``
    * ``leak_rate = max(sigmoid(z1), 1e-3)``
    * ``input_scaling = 10 ** clip(z2, -4, 2)``
    * ``connectivity = degree / units`` with ``degree`` (expected nonzeros per
      row) ``= d_min * (d_max / d_min) ** sigmoid(z3)``, log-uniform over
      ``degree_range``, at most 1
    * ``ridge = 10 ** clip(z4, -16, 4)``
    """

    units: int = 500
    max_spectral_radius: float = 3.0
    degree_range: tuple[float, float] = (1.0, 50.0)

    names = ("spectral_radius", "leak_rate", "input_scaling", "connectivity", "ridge")

    def decode(self, z: np.ndarray) -> dict[str, float]:
        """Hyperparameters of one genome."""
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        d_min, d_max = self.degree_range
        degree = d_min * (d_max / d_min) ** float(_sigmoid(z[3]))
        return {
            "spectral_radius": float(self.max_spectral_radius * _sigmoid(z[0])),
            "leak_rate": max(float(_sigmoid(z[1])), 1e-3),
            "input_scaling": float(10.0 ** np.clip(z[2], -4.0, 2.0)),
            "connectivity": float(min(1.0, degree / self.units)),
            "ridge": float(10.0 ** np.clip(z[4], -16.0, 4.0)),
        }

    def encode(self, spectral_radius: float, leak_rate: float, input_scaling: float, connectivity: float, ridge: float) -> np.ndarray:
        """The genome that decodes to these hyperparameters (inverse of :meth:`decode` inside its ranges)."""
        d_min, d_max = self.degree_range
        degree = connectivity * self.units
        return np.array(
            [
                _logit(spectral_radius / self.max_spectral_radius),
                _logit(leak_rate),
                math.log10(input_scaling),
                _logit(math.log(degree / d_min) / math.log(d_max / d_min)),
                math.log10(ridge),
            ]
        )


class Encoding(ABC):
    """How a flat genome decodes to reservoirs: its length, its starting point and its decoding."""

    #: ``"hyperparameters"``, ``"topology"`` or ``"weights"`` (the config's ``task.mode``)
    name: ClassVar[str]

    @property
    @abstractmethod
    def n_inputs(self) -> int:
        """Input width of the reservoirs."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Genome length."""

    @property
    def reservoirs_per_genome(self) -> int:
        """Reservoirs one genome is scored on (fitness averaged over them)."""
        return 1

    @property
    @abstractmethod
    def reservoir_seed(self) -> int:
        """Seed of the first reservoir (its sparsity pattern, bias and, unless evolved, weights)."""

    @abstractmethod
    def units_per_genome(self) -> int:
        """Rows one genome takes in a block-diagonal stack (at most; sets how many genomes share one)."""

    @abstractmethod
    def initial_genome(self) -> np.ndarray:
        """The default recipe's genome (deterministic)."""

    @abstractmethod
    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, ReservoirWeights, float]:
        """The ``j``-th reservoir of a genome: its hyperparameters, its weights and its ridge."""

    def weights(self, genomes: np.ndarray) -> tuple[list[ReservoirWeights], np.ndarray]:
        """Weights of every reservoir of a genome stack (genome-major) and one ridge per reservoir."""
        weights, ridges = [], []
        for genome in genomes:
            for j in range(self.reservoirs_per_genome):
                _, built, ridge = self.reservoir(genome, j)
                weights.append(built)
                ridges.append(ridge)
        return weights, np.asarray(ridges)

    def size_groups(self, genomes: np.ndarray) -> list[np.ndarray]:
        """Indices of the genomes whose reservoirs have one size (a stack needs equal sizes)."""
        return [np.arange(len(genomes))]

    def decoded(self, genome: np.ndarray) -> dict[str, Any]:
        """What a genome decodes to, JSON-able (reported as ``hp_*`` test figures); empty if nothing to say."""
        return {}

    @abstractmethod
    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Expected recurrent edges of each genome's reservoir."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able settings; ``encoding_from_description`` rebuilds the encoding from them."""


@dataclass(frozen=True)
class HyperparameterEncoding(Encoding):
    """Mode (a): a genome is 5 unconstrained genes decoded by :class:`HyperparameterSpace`.

    Each genome's reservoir is built from its hyperparameters and the fixed
    ``seed`` (``n_reservoirs`` > 1: seeds ``seed + j``, fitness averaged).
    Since the pattern is nested in the connectivity and spectral radius and
    input scaling are pure rescalings, nearby genomes give nearby reservoirs.
    The test figures use the first seed's reservoir.
    """

    name: ClassVar[str] = "hyperparameters"

    units: int = DEFAULT_RESERVOIR.units
    bias_scaling: float = DEFAULT_RESERVOIR.bias_scaling
    seed: int = 0
    n_reservoirs: int = 1
    max_spectral_radius: float = 3.0
    degree_range: tuple[float, float] = (1.0, 50.0)
    n_inputs: int = 1

    def __post_init__(self) -> None:
        if self.n_reservoirs < 1:
            raise ValueError(f"task.n_reservoirs = {self.n_reservoirs}: must be >= 1")
        if not 0 < self.degree_range[0] < self.degree_range[1]:
            raise ValueError(f"task.degree_range = {self.degree_range}: need 0 < low < high")
        for name in ("units", "seed", "n_reservoirs", "n_inputs"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("bias_scaling", "max_spectral_radius"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "degree_range", (float(self.degree_range[0]), float(self.degree_range[1])))

    @property
    def n_params(self) -> int:
        """Five genes."""
        return len(HyperparameterSpace.names)

    @property
    def reservoirs_per_genome(self) -> int:
        """``n_reservoirs`` seeds per genome."""
        return self.n_reservoirs

    @property
    def reservoir_seed(self) -> int:
        """``seed``: reservoir ``j`` of a genome uses ``seed + j``."""
        return self.seed

    @property
    def space(self) -> HyperparameterSpace:
        """The gene transforms at ``units``."""
        return HyperparameterSpace(self.units, self.max_spectral_radius, self.degree_range)

    def units_per_genome(self) -> int:
        """Units of all of a genome's reservoirs."""
        return self.units * self.n_reservoirs

    def initial_genome(self) -> np.ndarray:
        """The default recipe's genes (its expected edges per unit at this size)."""
        r = DEFAULT_RESERVOIR
        connectivity = r.connectivity * r.units / self.units
        return self.space.encode(r.spectral_radius, r.leak_rate, r.input_scaling, connectivity, DEFAULT_RIDGE)

    def _build(self, units: int, hp: dict[str, float], j: int) -> tuple[Reservoir, ReservoirWeights, float]:
        res = Reservoir(
            units=units,
            connectivity=hp["connectivity"],
            spectral_radius=hp["spectral_radius"],
            input_scaling=hp["input_scaling"],
            leak_rate=hp["leak_rate"],
            bias_scaling=self.bias_scaling,
            seed=self.seed + j,
            n_inputs=self.n_inputs,
        )
        return res, res.build(), hp["ridge"]

    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, ReservoirWeights, float]:
        """The ``j``-th reservoir (seed ``seed + j``) of a genome and its ridge."""
        return self._build(self.units, self.space.decode(genome), j)

    def decoded(self, genome: np.ndarray) -> dict[str, Any]:
        """The hyperparameters."""
        return self.space.decode(genome)

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Expected recurrent edges: ``units^2 * connectivity``."""
        return np.array([self.units * self.space.decode(g)["connectivity"] * self.units for g in genomes])

    def describe(self) -> dict[str, Any]:
        """Genes, their transforms, size and reservoir seeds."""
        return {
            "encoding": self.name,
            "genes": list(HyperparameterSpace.names),
            "transforms": (HyperparameterSpace.__doc__ or "").strip(),
            **asdict(self),
            "degree_range": list(self.degree_range),
        }


@dataclass(frozen=True)
class TopologyEncoding(HyperparameterEncoding):
    """Mode (c): the hyperparameters plus the reservoir's topology, its size and its edges.

    Genes: the five of :class:`HyperparameterSpace` and a sixth for the size,
    ``units = round(min_units * (max_units / min_units) ** sigmoid(z5))`` (log-uniform).
    The connectivity gene sets the expected number of edges per unit; since a
    reservoir's sparsity pattern thresholds one fixed uniform key per position,
    raising it adds edges and lowering it removes them, every other edge
    staying in place. Genomes of different sizes are scored in separate stacks
    (one per size), which never changes a genome's numbers. ``units`` is
    ``max_units``: the largest size, which sets how many genomes share a stack.
    """

    name: ClassVar[str] = "topology"

    min_units: int = 50
    max_units: int = 500

    def __post_init__(self) -> None:
        if not 2 <= int(self.min_units) < int(self.max_units):
            raise ValueError(f"task.min_units / max_units = {self.min_units} / {self.max_units}: need 2 <= min_units < max_units")
        object.__setattr__(self, "min_units", int(self.min_units))
        object.__setattr__(self, "max_units", int(self.max_units))
        object.__setattr__(self, "units", self.max_units)
        super().__post_init__()

    @property
    def n_params(self) -> int:
        """Five hyperparameter genes and the size gene."""
        return len(HyperparameterSpace.names) + 1

    def units_of(self, genome: np.ndarray) -> int:
        """Reservoir size a genome encodes."""
        z = float(np.asarray(genome, dtype=np.float64).reshape(-1)[5])
        return int(round(self.min_units * (self.max_units / self.min_units) ** float(_sigmoid(np.array(z)))))

    def space_of(self, genome: np.ndarray) -> HyperparameterSpace:
        """The hyperparameter transforms at the genome's own size (connectivity = degree / units)."""
        return HyperparameterSpace(self.units_of(genome), self.max_spectral_radius, self.degree_range)

    def initial_genome(self) -> np.ndarray:
        """The default recipe's hyperparameters, at a size inside the range."""
        return np.concatenate([super().initial_genome(), [2.0]])  # ~380 units of 50..500: room both ways

    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, ReservoirWeights, float]:
        """The ``j``-th reservoir of a genome (its own size) and its ridge."""
        genome = np.asarray(genome, dtype=np.float64).reshape(-1)
        return self._build(self.units_of(genome), self.space_of(genome).decode(genome[:5]), j)

    def size_groups(self, genomes: np.ndarray) -> list[np.ndarray]:
        """One group per reservoir size, by increasing size."""
        sizes = np.array([self.units_of(g) for g in genomes])
        return [np.flatnonzero(sizes == units) for units in np.unique(sizes)]

    def decoded(self, genome: np.ndarray) -> dict[str, Any]:
        """The hyperparameters, the size and the edges of the first reservoir."""
        genome = np.asarray(genome, dtype=np.float64).reshape(-1)
        hp = self.space_of(genome).decode(genome[:5])
        units = self.units_of(genome)
        edges = Reservoir(units=units, connectivity=hp["connectivity"], seed=self.seed, n_inputs=self.n_inputs).n_recurrent
        return {**hp, "units": units, "edges": int(edges)}

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Expected recurrent edges of each genome's reservoir."""
        return np.array([self.units_of(g) * self.space_of(g).decode(g[:5])["connectivity"] * self.units_of(g) for g in genomes])

    def describe(self) -> dict[str, Any]:
        """As the hyperparameter encoding, with the size gene."""
        return {**super().describe(), "genes": [*HyperparameterSpace.names, "units"]}


@dataclass(frozen=True)
class WeightsEncoding(Encoding):
    """Mode (b): a genome is ``[W nonzeros (CSR order), W_in row-major]`` on the seed's fixed pattern.

    The bias, leak rate and ridge stay fixed; the readout is refitted by
    ridge regression inside every fitness evaluation. ``rescale=True``
    rescales each genome's ``W`` to ``reservoir.spectral_radius`` (one
    eigen-solve per genome); by default the weights are used as they are.
    """

    name: ClassVar[str] = "weights"

    reservoir_spec: Reservoir = DEFAULT_RESERVOIR.replace(units=100, connectivity=0.1)
    ridge: float = DEFAULT_RIDGE
    rescale: bool = False

    def __post_init__(self) -> None:
        if not self.ridge >= 0:
            raise ValueError(f"task.ridge = {self.ridge!r}: must be >= 0")

    @property
    def n_params(self) -> int:
        """Recurrent nonzeros plus input weights."""
        return self.reservoir_spec.n_weights

    @property
    def n_inputs(self) -> int:
        """Input width of the reservoir."""
        return self.reservoir_spec.n_inputs

    @property
    def reservoir_seed(self) -> int:
        """The fixed reservoir's seed."""
        return self.reservoir_spec.seed

    def units_per_genome(self) -> int:
        """The reservoir's units."""
        return self.reservoir_spec.units

    def initial_genome(self) -> np.ndarray:
        """The seed's own weights (spectral radius already set)."""
        return self.reservoir_spec.weight_vector()

    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, ReservoirWeights, float]:
        """The genome's weights on the seed's pattern (one reservoir per genome) and the fixed ridge."""
        return self.reservoir_spec, self.reservoir_spec.weights_from_vector(genome, rescale=self.rescale), self.ridge

    def weights(self, genomes: np.ndarray) -> tuple[list[ReservoirWeights], np.ndarray]:
        """Weights of every genome and the fixed ridge for each."""
        return [self.reservoir_spec.weights_from_vector(g, rescale=self.rescale) for g in genomes], np.full(len(genomes), self.ridge)

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Recurrent edges of the fixed pattern, the same for every genome."""
        return np.full(len(genomes), float(self.reservoir_spec.n_recurrent))

    def describe(self) -> dict[str, Any]:
        """The reservoir's hyperparameters and the genome layout."""
        return {
            "encoding": self.name,
            "reservoir": self.reservoir_spec.describe(),
            "ridge": self.ridge,
            "rescale": self.rescale,
            "layout": "[W nonzeros in CSR (row-major) order of the seed's pattern, W_in (units x n_in) row-major]",
        }


# Typed as the dataclasses they are (not type[Encoding]), so their fields can be read back.
ENCODINGS: dict[str, type[HyperparameterEncoding | WeightsEncoding]] = {
    e.name: e for e in (HyperparameterEncoding, TopologyEncoding, WeightsEncoding)
}


def encoding_from_description(description: dict[str, Any]) -> Encoding:
    """Rebuild an encoding from its :meth:`Encoding.describe` output."""
    name = description.get("encoding")
    if name == WeightsEncoding.name:
        return WeightsEncoding(Reservoir.from_description(description["reservoir"]), description["ridge"], description["rescale"])
    if name not in ENCODINGS:
        raise ValueError(f"ESN encoding {name!r} is not known; allowed: {sorted(ENCODINGS)}")
    cls = ENCODINGS[name]
    fields = {k: v for k, v in description.items() if k in cls.__dataclass_fields__}
    return cls(**{**fields, "degree_range": tuple(fields["degree_range"])})
