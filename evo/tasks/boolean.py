"""Boolean function tasks: XOR and n-bit parity.

Every input pattern is enumerated, so the training set is the whole truth
table; the "test" figure is the accuracy on that same table (there is nothing
held out for a Boolean function), reported as ``test_accuracy`` for
uniformity. A case counts as right when the output is on the right side of 0.5.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from evo.tasks.base import Task
from networks.preprocessing import Preprocessing


class ParityTask(Task):
    """n-bit parity: output 1 when an odd number of inputs are 1 (XOR is n = 2)."""

    kind = "classification"
    output_activation = "sigmoid"

    def __init__(self, bits: int = 2) -> None:
        if not 2 <= int(bits) <= 16:
            raise ValueError(f"task.bits = {bits!r}: parity needs between 2 and 16 bits")
        self.bits = int(bits)
        self.name = "xor" if self.bits == 2 else f"parity{self.bits}"
        patterns = np.array(list(itertools.product([0.0, 1.0], repeat=self.bits)))
        self.inputs = patterns
        self.targets = (patterns.sum(axis=1) % 2)[:, None]
        self.n_inputs = self.bits
        self.n_outputs = 1

    def _outputs(self, network, genomes: np.ndarray) -> np.ndarray:
        return network.forward(genomes, self.inputs)  # (P, 2^n, 1)

    def evaluate(self, network, genomes, seeds, generation_seed) -> np.ndarray:
        """1 - mean squared error over the truth table (1.0 is perfect)."""
        err = self._outputs(network, genomes) - self.targets[None]
        return 1.0 - np.mean(err * err, axis=(1, 2))

    def test(self, network, genome, seed) -> dict[str, float]:
        """Accuracy and mean squared error on the whole truth table."""
        out = self._outputs(network, np.asarray(genome)[None])[0]
        correct = (out > 0.5) == (self.targets > 0.5)
        return {
            "test_accuracy": float(np.mean(correct)),
            "test_mse": float(np.mean((out - self.targets) ** 2)),
            "test_cases": int(len(self.targets)),
        }

    def validate(self, network, genome, seed) -> dict[str, float]:
        """Validation is the truth table too: the score is its accuracy, ties broken by MSE."""
        figures = self.test(network, genome, seed)
        return {
            "val_score": figures["test_accuracy"] - 1e-3 * figures["test_mse"],
            **{k.replace("test_", "val_"): v for k, v in figures.items()},
        }

    def samples_per_evaluation(self) -> int:
        """The whole truth table."""
        return len(self.targets)

    def preprocessing(self) -> Preprocessing:
        """Bits as 0.0 / 1.0, used as they are."""
        return Preprocessing(n_features=self.bits, label_names=("0", "1"), note="bits as 0 / 1")

    def outputs(self) -> dict[str, Any]:
        """One sigmoid output: parity 1 when it is above 0.5."""
        return {
            "kind": "classification",
            "decision": "threshold",
            "threshold": 0.5,
            "activation": self.output_activation,
            "labels": ["0", "1"],
        }

    def describe(self) -> dict:
        """Name and size."""
        return {"name": self.name, "kind": self.kind, "bits": self.bits, "cases": len(self.targets)}
