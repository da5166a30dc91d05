"""One-step-ahead prediction of a series: the task echo-state networks are evolved on.

NRMSE (Jaeger): ``sqrt(mean((y - d)^2) / var(d))``; fitness is
``-log10(NRMSE)`` (default) or ``-NRMSE``, maximised. The network
(:class:`networks.esn.ESNSpec`) turns a genome stack into block-diagonal
reservoir stacks; each is run teacher-forced once over the segments in order
(its state flows from one segment into the next), the ridge readouts are
fitted on ``train`` only, and fitness is the one-step NRMSE on ``val``
(averaged over a genome's reservoirs). ``test`` is only read by
:meth:`TimeSeriesTask.test`, which reports the one-step NRMSE on ``test``
and, for an autonomous series, the closed-loop NRMSE at step ``horizon``
(84, Jaeger 2001/2004's NRMSE84): from ``starts`` (20) start points spread
over ``test``, each with its teacher-forced state, the ESN runs free for
``horizon`` steps (all start points batched) and the errors at the last step
are normalised by the variance of the test targets.

Fitness is a deterministic function of the genome (fixed reservoir seeds, no
sampling), so ``seeds`` is not used and no chunking of a population can
change it. Series and splits: :mod:`evo.tasks.series`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evo.tasks.base import Task, TrainsWeights
from evo.tasks.series import SeriesSplit, make_series_split
from networks.esn import (
    ESNReadoutSpec,
    ESNSpec,
    ReservoirStack,
    ReservoirWeights,
    closed_loop,
    fit_readouts,
    nrmse,
    predict_onwards,
)
from networks.preprocessing import Preprocessing

FITNESS_KINDS = ("log_nrmse", "nrmse")


def _log_fitness(values: np.ndarray, kind: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log10(values) if kind == "log_nrmse" else -values


def free_run_starts(data: SeriesSplit, horizon: int, starts: int) -> np.ndarray:
    """Start steps of the closed-loop test, evenly spread over the test segment."""
    stride = max(1, (data.n_test - horizon) // starts)
    return data.val_end + stride * np.arange(starts)


def _fit_on_train(data: SeriesSplit, stack: ReservoirStack, ridges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge readouts ``(P, n_out, F)`` fitted on washout + train, and the states ``(P, 1, units)`` at its end."""
    return fit_readouts(stack, data.inputs[: data.train_end], data.targets[: data.train_end], data.washout, ridges)


def score_on_test(
    data: SeriesSplit, weights: ReservoirWeights, ridge: float, horizon: int = 84, starts: int = 20, W_out: np.ndarray | None = None
) -> dict[str, float]:
    """Fit the readout on train; one-step NRMSE on val and test; closed-loop NRMSE at ``horizon`` (autonomous series).

    ``W_out`` ``(n_out, 1 + n_in + units)``, if given, is used instead of the
    ridge readout (e.g. a readout trained by gradient descent).
    """
    stack = ReservoirStack([weights])
    ridge_W_out, state = _fit_on_train(data, stack, np.array([ridge]))
    W_out = ridge_W_out if W_out is None else np.asarray(W_out, dtype=np.float64)[None]
    points = free_run_starts(data, horizon, starts) if data.autonomous else np.zeros(0, dtype=int)
    onwards = data.inputs[data.train_end : data.test_end]
    outputs, kept = predict_onwards(stack, W_out, state, onwards, keep=(points - data.train_end).tolist())
    val_out = outputs[0, : data.n_val]
    test_out = outputs[0, data.n_val :]
    figures = {
        "val_nrmse": nrmse(val_out, data.targets[data.train_end : data.val_end]),
        "test_nrmse": nrmse(test_out, data.targets[data.val_end : data.test_end]),
        "test_steps": int(data.n_test),
    }
    if data.autonomous:
        last_states = np.stack([kept[int(i) - data.train_end][0] for i in points])  # (starts, units)
        last_inputs = data.inputs[points]  # (starts, n_in)
        free = closed_loop(stack, W_out[0], horizon, last_states, last_inputs)  # (starts, horizon, n_out)
        truth = data.targets[points + horizon - 1]
        figures["test_nrmse_free_run"] = nrmse(free[:, -1], truth, variance=float(np.var(data.targets[data.val_end : data.test_end])))
        figures["free_run_horizon"] = int(horizon)
        figures["free_run_starts"] = int(starts)
    return figures


class TimeSeriesTask(Task, TrainsWeights):
    """Scores ESN genomes (an :class:`~networks.esn.ESNSpec`) on a :class:`~evo.tasks.series.SeriesSplit`."""

    kind = "timeseries"
    output_activation = "identity"
    #: `evo train` / `evo compare` set evolution beside the ESN's standard recipe, not backprop
    baseline = "esn_recipe"

    def __init__(self, data: SeriesSplit | None = None, fitness: str = "log_nrmse", horizon: int = 84, starts: int = 20) -> None:
        if fitness not in FITNESS_KINDS:
            raise ValueError(f"task.fitness = {fitness!r}: allowed 'log_nrmse' (-log10 NRMSE), 'nrmse' (-NRMSE)")
        self.data = data if data is not None else make_series_split()
        self.fitness = fitness
        self.horizon = int(horizon)
        self.starts = int(starts)
        if self.data.autonomous and (self.horizon < 1 or self.starts < 1 or self.data.n_test < self.horizon + self.starts):
            raise ValueError(
                f"free run: need horizon >= 1, starts >= 1 and n_test >= horizon + starts; "
                f"got {self.horizon}, {self.starts}, n_test {self.data.n_test}"
            )
        source = self.data.source
        self.name = f"file:{source['path']}" if source.get("series") == "file" else str(source.get("series", "series"))
        self.n_inputs = int(self.data.inputs.shape[1])
        self.n_outputs = int(self.data.targets.shape[1])

    def val_nrmse(self, network: ESNSpec, genomes: np.ndarray) -> np.ndarray:
        """One-step validation NRMSE ``(P,)`` of each genome (mean over its reservoirs)."""
        genomes = network.check(genomes)
        data = self.data
        target = data.targets[data.train_end : data.val_end]
        var = float(np.var(target))
        errors = np.empty(len(genomes))
        for idx, stack, ridges in network.reservoir_stacks(genomes):
            W_out, state = _fit_on_train(data, stack, ridges)
            outputs, _ = predict_onwards(stack, W_out, state, data.inputs[data.train_end : data.val_end])
            err = np.sqrt(np.mean((outputs - target[None]) ** 2, axis=(1, 2)) / var)
            errors[idx] = err.reshape(-1, network.reservoirs_per_genome).mean(axis=1)
        return errors

    def evaluate(self, network: ESNSpec, genomes: np.ndarray, seeds: np.ndarray, generation_seed: int) -> np.ndarray:
        """``-log10`` (or minus) the one-step validation NRMSE of each genome; seeds unused."""
        return _log_fitness(self.val_nrmse(network, genomes), self.fitness)

    def validate(self, network: ESNSpec, genome: np.ndarray, seed: int) -> dict[str, float]:
        """The fitness figure itself (the validation segment is what fitness reads)."""
        error = float(self.val_nrmse(network, np.asarray(genome)[None])[0])
        return {"val_score": float(_log_fitness(np.array([error]), self.fitness)[0]), "val_nrmse": error}

    def test(self, network: ESNSpec, genome: np.ndarray, seed: int) -> dict[str, float]:
        """Test figures of the genome's first reservoir (see :func:`score_on_test`) and what the genome decodes to (``hp_*``)."""
        _, weights, ridge = network.reservoir(genome)
        figures = score_on_test(self.data, weights, ridge, self.horizon, self.starts)
        return {**figures, **{f"hp_{k}": v for k, v in network.decoded(genome).items()}}

    def trained(self, network: ESNSpec, genome: np.ndarray, seed: int | None = None) -> tuple[ESNReadoutSpec, np.ndarray]:
        """The genome's fitted network (first reservoir, ridge readout on washout + train) and its parameters: what :meth:`test` scores."""
        data = self.data
        return network.fit(genome, data.inputs[: data.train_end], data.targets[: data.train_end], data.washout)

    def preprocessing(self) -> Preprocessing:
        """The series' standardisation (fitted on washout + train): inputs in, predictions back out in the series' units."""
        st = self.data.source.get("standardised", {})
        if "mean" in st:  # autonomous: input and target are the same series
            u_mean, u_std, y_mean, y_std = st["mean"], st["std"], st["mean"], st["std"]
        else:
            u_mean, u_std, y_mean, y_std = st.get("u_mean", 0.0), st.get("u_std", 1.0), st.get("y_mean", 0.0), st.get("y_std", 1.0)
        return Preprocessing(
            n_features=self.n_inputs,
            offset=u_mean,
            scale=u_std,
            target_offset=y_mean,
            target_scale=y_std,
            note="series standardised with the mean and standard deviation of its washout + training segment",
        )

    def outputs(self) -> dict[str, Any]:
        """One-step-ahead predictions, in the series' units; an autonomous series can be continued in closed loop."""
        return {"kind": "timeseries", "activation": "identity", "autonomous": bool(self.data.autonomous), "washout": self.data.washout}

    def samples_per_evaluation(self) -> int:
        """Reservoir steps per fitness evaluation."""
        return self.data.val_end

    def describe(self) -> dict:
        """The data, the fitness and the free-run test."""
        return {
            "name": self.name,
            "kind": self.kind,
            "fitness": self.fitness,
            "data": self.data.describe(),
            "free_run": {"horizon": self.horizon, "starts": self.starts},
        }
