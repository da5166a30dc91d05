"""The task interface: fitness of a whole stack of genomes at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np


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
    #: ``"classification"`` (test_accuracy), ``"control"`` (test_mean_return), ``"timeseries"`` (test_nrmse)
    kind: str = "classification"
    #: what `evo train` runs and `evo compare` sets beside evolution: a key of ``evo.baselines.BASELINES``
    baseline: str = "backprop"
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

    def close(self) -> None:
        """Release resources (environments)."""


@runtime_checkable
class TrainsWeights(Protocol):
    """A task that trains each genome's weights inside its fitness, declared among its bases; it hands back the trained network."""

    def trained(self, network, genome: np.ndarray, seed: int | None = None) -> tuple[Any, np.ndarray]:
        """The trained network spec and its flat parameters for ``genome`` (the network validate and test report)."""
        ...
