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


@runtime_checkable
class TrainsWeights(Protocol):
    """A task that trains each genome's weights inside its fitness, declared among its bases; it hands back the trained network."""

    def trained(self, network, genome: np.ndarray, seed: int | None = None) -> tuple[Any, np.ndarray]:
        """The trained network spec and its flat parameters for ``genome`` (the network validate and test report)."""
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
