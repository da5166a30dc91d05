"""The echo-state network's baselines: the standard recipe, and a readout trained by gradient descent.

The standard recipe is a random reservoir with the config's default
hyperparameters and the ridge readout in closed form (the gradient-free
closed-form counterpart of backprop for this model). The gradient-descent
readout trains the same linear map ``[u, x] -> y`` with the project's trainer
(Adam, minibatches, early stopping on the validation segment), to show what
backprop reaches on the very same reservoir states.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from evo.config import RunConfig
from networks.esn import Reservoir, ReservoirStack, readout_features


def recipe_reservoir(config: RunConfig, n_inputs: int) -> Reservoir:
    """The config's default-recipe reservoir."""
    n = config.network
    return Reservoir(
        units=n.units, connectivity=n.connectivity, spectral_radius=n.spectral_radius, input_scaling=n.input_scaling,
        leak_rate=n.leak_rate, bias_scaling=n.bias_scaling, seed=n.seed, n_inputs=n_inputs,
    )


def run_recipe(config: RunConfig, task) -> dict[str, Any]:
    """Figures of the standard recipe: build the reservoir, ridge readout, score on val and test."""
    from evo.tasks.timeseries import score_on_test

    t0 = time.perf_counter()
    weights = recipe_reservoir(config, task.n_inputs).build()
    figures = score_on_test(task.data, weights, config.network.ridge, task.horizon, task.starts)
    return {"wall_seconds": time.perf_counter() - t0, "n_params": _readout_size(config, task), **figures}


def run_gd_readout(config: RunConfig, task, on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """The recipe's reservoir with its readout trained by gradient descent (the [train] section's settings)."""
    from evo.tasks.timeseries import score_on_test
    from networks import MLP
    from evo.train import trainer_from_config

    data, t = task.data, config.train
    t0 = time.perf_counter()
    weights = recipe_reservoir(config, task.n_inputs).build()
    states = ReservoirStack([weights]).run(data.inputs[None, : data.val_end])[0, 0]  # (T, units)
    features = readout_features(data.inputs[: data.val_end], states)[:, 1:]  # [u, x]; the layer has its own bias
    train, val = slice(data.washout, data.train_end), slice(data.train_end, data.val_end)
    readout = MLP((features.shape[1], data.targets.shape[1]), "identity", "identity")
    trainer = trainer_from_config(readout, "mse", t, seed=config.seed, dropout=0.0)
    trainer.fit(features[train], data.targets[train], features[val], data.targets[val], on_epoch=on_epoch)
    (W, b), = readout.unflatten(np.asarray(trainer.params_)[None])
    W_out = np.concatenate([b[0].T, W[0].T], axis=1)  # (n_out, 1 + n_in + units), the ridge readout's layout
    wall = time.perf_counter() - t0
    figures = score_on_test(data, weights, config.network.ridge, task.horizon, task.starts, W_out=W_out)
    return {
        "wall_seconds": wall,
        "epochs": len(trainer.history_),
        "best_epoch": trainer.best_epoch_,
        "samples_seen": trainer.history_[-1]["samples_seen"] if trainer.history_ else 0,
        "n_params": _readout_size(config, task),
        **figures,
    }


def _readout_size(config: RunConfig, task) -> int:
    return (1 + task.n_inputs + config.network.units) * task.n_outputs
