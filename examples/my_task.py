"""A user's own task class, for `[task] type = "python"` (see python-task.toml).

The interface is evo's Task (evo/tasks/base.py, described in ARCHITECTURE.md):
set `n_inputs`, `n_outputs` and `output_activation` in the constructor, score a
whole stack of genomes in `evaluate` (fitness is maximised), report held-out
figures in `test`. `network.forward(genomes, X)` gives `(P, B, n_outputs)` for
P genomes at once, whatever network the config chose (MLP, CNN, NEAT...).
"""

from __future__ import annotations

import numpy as np

from evo.tasks.base import Task


class SineFit(Task):
    """Fit y = sin(frequency * x) on [-pi, pi]: fitness is minus the mean squared error on a grid."""

    kind = "function_fit"

    def __init__(self, frequency: float = 1.0, points: int = 64) -> None:
        if points < 4:
            raise ValueError(f"task.kwargs.points = {points!r}: must be >= 4")
        self.name = f"sine-fit(frequency={frequency})"
        self.n_inputs, self.n_outputs = 1, 1
        self.output_activation = "identity"
        self.frequency = float(frequency)
        self.x = np.linspace(-np.pi, np.pi, points)[:, None]
        self.y = np.sin(self.frequency * self.x)
        # Held-out points between the training grid's.
        self.x_test = (self.x[:-1] + self.x[1:]) / 2
        self.y_test = np.sin(self.frequency * self.x_test)

    def evaluate(self, network, genomes, seeds, generation_seed):
        """Minus the mean squared error of every genome at once."""
        out = network.forward(genomes, self.x)  # (P, points, 1)
        return -np.mean((out - self.y[None]) ** 2, axis=(1, 2))

    def test(self, network, genome, seed):
        """The error between the grid points."""
        out = network.forward(np.asarray(genome)[None], self.x_test)[0]
        return {"test_mse": float(np.mean((out - self.y_test) ** 2))}

    def describe(self):
        """Recorded in the run directory."""
        return {"name": self.name, "kind": self.kind, "frequency": self.frequency, "points": len(self.x)}
