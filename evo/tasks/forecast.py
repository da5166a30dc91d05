"""Forecasting a series from a window of its past: one-step and free-run prediction by any network (an LSTM, an MLP).

The series and its split are the echo-state task's (:func:`evo.tasks.series.make_series_split`:
``washout | train | val | test``, standardised on washout + train), so a
network evolved or trained here and an ESN stand on equal terms. A sample is
the ``window`` inputs up to step t (``inputs[t - window + 1 .. t]``, a
sequence a recurrent network reads one value per step from rest) and its
target is ``targets[t]`` (the next value of an autonomous series). The
samples of a segment are the windows whose target lies in it; the first
training windows reach back into the washout, which must therefore hold at
least ``window - 1`` steps.

* Fitness: ``-log10`` NRMSE (or ``-NRMSE``) on the training windows, all of
  them or a minibatch drawn from the generation seed (the same for every
  individual of a generation).
* :meth:`ForecastTask.validate`: the one-step NRMSE on the validation windows.
* :meth:`ForecastTask.test`: the one-step NRMSE on the test windows and, for an
  autonomous series, the closed-loop NRMSE after ``horizon`` steps (84: NRMSE84)
  from the ESN task's ``starts`` start points: each prediction is appended to
  the window and the oldest value dropped, ``horizon`` times; the errors at
  the last step are normalised by the variance of the test targets, exactly
  as :func:`evo.tasks.timeseries.score_on_test` does for the ESN.

NRMSE (Jaeger): ``sqrt(mean((y - d)^2) / var(d))``.
"""

from __future__ import annotations

import numpy as np

from evo.tasks.base import Task
from evo.tasks.series import SeriesSplit
from evo.tasks.timeseries import free_run_starts

FITNESS_KINDS = ("log_nrmse", "nrmse")


def nrmse(outputs: np.ndarray, targets: np.ndarray, variance: float | None = None) -> np.ndarray:
    """NRMSE over the last two axes (samples, outputs); ``variance`` defaults to that of ``targets``."""
    var = float(np.var(targets)) if variance is None else variance
    return np.sqrt(np.mean((outputs - targets) ** 2, axis=(-2, -1)) / var)


class ForecastTask(Task):
    """Predict ``targets[t]`` from the last ``window`` inputs; see the module docstring."""

    kind = "timeseries"
    output_activation = "identity"
    #: `evo train` / `evo compare`: the same network trained by gradient descent (BPTT for an RNN)
    baseline = "backprop_forecast"

    def __init__(
        self,
        data: SeriesSplit,
        window: int = 32,
        fitness: str = "log_nrmse",
        batch_size: int | None = None,
        horizon: int = 84,
        starts: int = 20,
    ) -> None:
        if fitness not in FITNESS_KINDS:
            raise ValueError(f"task.fitness = {fitness!r}: allowed 'log_nrmse' (-log10 NRMSE), 'nrmse' (-NRMSE)")
        if not 1 <= window <= data.washout + 1:
            raise ValueError(
                f"task.window = {window}: must be between 1 and washout + 1 = {data.washout + 1} (the first training windows reach into the washout)"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"task.batch_size = {batch_size!r}: must be >= 1 (or omitted for every training window)")
        if data.autonomous and (horizon < 1 or starts < 1 or data.n_test < horizon + starts):
            raise ValueError(
                f"free run: need horizon >= 1, starts >= 1 and n_test >= horizon + starts; got {horizon}, {starts}, n_test {data.n_test}"
            )
        self.data = data
        self.window = int(window)
        self.fitness = fitness
        self.horizon, self.starts = int(horizon), int(starts)
        self.n_features = int(data.inputs.shape[1])
        self.n_inputs = self.window * self.n_features
        self.n_outputs = int(data.targets.shape[1])
        self.sequence_steps = self.window
        source = data.source
        self.name = f"file:{source['path']}" if source.get("series") == "file" else f"{source.get('series', 'series')} forecast"
        self.segments = {
            "train": np.arange(data.washout, data.train_end),
            "val": np.arange(data.train_end, data.val_end),
            "test": np.arange(data.val_end, data.test_end),
        }
        self.batch_size = batch_size if batch_size and batch_size < len(self.segments["train"]) else None

    def windows(self, ends: np.ndarray) -> np.ndarray:
        """Samples ``(len(ends), window * n_features)``: the inputs of the ``window`` steps up to each end, oldest first."""
        offsets = np.arange(-self.window + 1, 1)
        return self.data.inputs[np.asarray(ends)[:, None] + offsets].reshape(len(ends), -1)

    def segment(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Samples and targets of the ``"train"``, ``"val"`` or ``"test"`` windows."""
        ends = self.segments[name]
        return self.windows(ends), self.data.targets[ends]

    def _score(self, errors: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.log10(errors) if self.fitness == "log_nrmse" else -errors

    def evaluate(self, network, genomes: np.ndarray, seeds: np.ndarray, generation_seed: int) -> np.ndarray:
        """``-log10`` (or minus) the NRMSE of each genome on this generation's training windows."""
        ends = self.segments["train"]
        if self.batch_size is not None:
            ends = np.sort(np.random.default_rng(generation_seed).choice(ends, size=self.batch_size, replace=False))
        outputs = network.forward(genomes, self.windows(ends))
        return self._score(nrmse(outputs, self.data.targets[ends][None]))

    def validate(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """One-step NRMSE on the validation windows (its score as the fitness is)."""
        X, y = self.segment("val")
        error = float(nrmse(network.forward(np.asarray(genome)[None], X)[0], y))
        score = float(self._score(np.array([error]))[0])
        return {"val_score": score if np.isfinite(score) else -np.inf, "val_nrmse": error}

    def test(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """One-step NRMSE on the test windows; for an autonomous series the closed-loop NRMSE after ``horizon`` steps."""
        genome = np.asarray(genome)[None]
        X, y = self.segment("test")
        figures: dict[str, float] = {"test_nrmse": float(nrmse(network.forward(genome, X)[0], y)), "test_steps": int(len(y))}
        if self.data.autonomous:
            points = free_run_starts(self.data, self.horizon, self.starts)
            free = self.free_run(network, genome[0], points)
            truth = self.data.targets[points + self.horizon - 1]
            variance = float(np.var(self.data.targets[self.data.val_end : self.data.test_end]))
            figures["test_nrmse_free_run"] = float(nrmse(free[:, -1], truth, variance))
            figures["free_run_horizon"] = self.horizon
            figures["free_run_starts"] = self.starts
        return figures

    def free_run(self, network, genome: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Closed-loop predictions ``(len(points), horizon, n_out)``: from each point's window, each output fed back as the next input."""
        window = self.data.inputs[np.asarray(points)[:, None] + np.arange(-self.window + 1, 1)].copy()  # (S, W, F)
        out = np.empty((len(points), self.horizon, self.n_outputs))
        for k in range(self.horizon):
            out[:, k] = network.forward(genome[None], window.reshape(len(points), -1))[0]
            window[:, :-1] = window[:, 1:]
            window[:, -1] = out[:, k]
        return out

    def samples_per_evaluation(self) -> int:
        """Windows each fitness evaluation forwards."""
        return self.batch_size or len(self.segments["train"])

    def describe(self) -> dict:
        """The data, the window, the fitness and the free-run test."""
        return {
            "name": self.name,
            "kind": self.kind,
            "fitness": self.fitness,
            "window": self.window,
            "batch_size": self.batch_size,
            "data": self.data.describe(),
            "free_run": {"horizon": self.horizon, "starts": self.starts},
        }
