"""The task interface: fitness of a whole stack of genomes at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from networks.preprocessing import Preprocessing


class Task(ABC):
    """A problem that scores a stack of genomes of one network spec.

    Subclasses set ``n_inputs``, ``n_outputs`` and ``output_activation`` (what
    the network's last layer should be) in their constructor, after checking
    their inputs (a missing file or unknown environment raises ``ValueError``
    there, before any run directory exists). Fitness is always maximised.
    """

    name: str = "task"
    n_inputs: int
    n_outputs: int
    output_activation: str = "identity"
    #: (C, H, W) when the samples are images (what a convolutional network reads), else None
    input_shape: tuple[int, int, int] | None = None
    #: ``"classification"`` (test_accuracy), ``"control"`` (test_mean_return), ``"timeseries"`` (test_nrmse)
    kind: str = "classification"
    #: what `evo train` runs and `evo compare` sets beside evolution: a key of ``evo.baselines.BASELINES``
    baseline: str = "backprop"
    #: a fitness that ends the run once a generation reaches it (the task's own target; the config's target_fitness wins)
    target_fitness: float | None = None
    #: time steps a recurrent network reads one sample in, unless its config says (1: a sample is one step)
    sequence_steps: int = 1

    @abstractmethod
    def evaluate(self, network, genomes: np.ndarray, seeds: np.ndarray, generation_seed: int) -> np.ndarray:
        """Fitness ``(P,)`` of genomes ``(P, n_params)``; ``seeds`` ``(P,)`` are per individual."""

    @abstractmethod
    def test(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """Held-out figures of one genome, on data or episodes fitness never saw."""

    def validate(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """Figures on the validation split (used to pick the best genome); empty if none."""
        return {}

    def samples_per_evaluation(self) -> int:
        """How many sample-forward passes one fitness evaluation costs (for reports)."""
        return 1

    def describe(self) -> dict:
        """JSON-able description recorded in the run directory."""
        return {"name": self.name, "kind": self.kind}

    def preprocessing(self) -> Preprocessing:
        """How raw inputs become what the network reads (saved with the model; none by default)."""
        return Preprocessing(n_features=self.n_inputs)

    def outputs(self) -> dict[str, Any]:
        """What the network's outputs mean, for a saved model: ``kind`` and what turns them into answers (see networks.model)."""
        return {"kind": "regression", "activation": self.output_activation}

    def close(self) -> None:
        """Release resources (environments)."""

    def as_network_dtype(self, network, name: str, array: np.ndarray) -> np.ndarray:
        """``array`` in the type ``network`` computes in (its ``dtype``), cast once and kept under ``name``.

        A float64 network gets ``array`` itself; a float32 one a float32 copy
        made on first use, so a dataset is cast once per task (per Ray
        worker), not once per generation. The copies are not pickled (Ray).
        """
        dtype = network.dtype
        if dtype == "float64" or array.dtype == dtype:
            return array
        kept: dict[tuple[str, str], np.ndarray] = self.__dict__.setdefault("_dtype_copies", {})
        copy = kept.get((name, dtype))
        if copy is None:
            copy = kept[(name, dtype)] = np.ascontiguousarray(array, dtype=dtype)
        return copy

    def __getstate__(self) -> dict[str, Any]:
        # The dtype copies are derived data: a worker makes its own instead of receiving them.
        return {key: value for key, value in self.__dict__.items() if key != "_dtype_copies"}

    def ray_runtime_env(self) -> dict[str, Any] | None:
        """What Ray workers need to rebuild this task: a user's task class ships its module (:mod:`evo.tasks.user_code`)."""
        from evo.tasks.user_code import runtime_env_for

        module = type(self).__module__
        return None if module.startswith(("evo.", "networks.")) else runtime_env_for([module])


@runtime_checkable
class TrainsWeights(Protocol):
    """A task that trains each genome's weights inside its fitness, declared among its bases; it hands back the trained network."""

    def trained(self, network, genome: np.ndarray, seed: int | None = None) -> tuple[Any, np.ndarray]:
        """The trained network spec and its flat parameters for ``genome`` (the network validate and test report)."""
        ...


@runtime_checkable
class DefinesGenome(Protocol):
    """A task whose genome is the solution itself (a user's f(x), a discrete problem), declared among its bases.

    It has no network: the run uses its :class:`~evo.tasks.genome.GenomeSpace` where
    a network spec would stand (``n_params``, the starting point, the bounds and the
    representation the strategy needs), and reports the best solution in the
    user's terms (``summary.json``: ``best_value``, ``best_solution``).
    """

    def genome_space(self) -> Any:
        """The :class:`~evo.tasks.genome.GenomeSpace` of the solutions."""
        ...

    def solution_summary(self, genome: np.ndarray, fitness: float) -> dict[str, Any]:
        """``best_value`` (in the user's sign) and ``best_solution`` (in the user's terms) of a genome and its fitness."""
        ...


class TaskShape(Protocol):
    """What a network is built from: a task's name, sizes and output activation (every Task has them)."""

    name: str
    n_inputs: int
    n_outputs: int
    output_activation: str
    input_shape: tuple[int, int, int] | None
    sequence_steps: int


@dataclass
class Shape:
    """A :class:`TaskShape` without a task: what an ask/tell study's client declares."""

    n_inputs: int
    n_outputs: int
    output_activation: str = "identity"
    input_shape: tuple[int, int, int] | None = None
    name: str = "study"
    sequence_steps: int = 1
