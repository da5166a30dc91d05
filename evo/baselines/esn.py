"""The echo-state network's baselines: the standard recipe, and a readout trained by gradient descent.

The standard recipe is a random reservoir with the config's default
hyperparameters and the ridge readout in closed form (the gradient-free
closed-form counterpart of backprop for this model). The gradient-descent
readout trains the same linear map ``[u, x] -> y`` with the project's trainer
(Adam, minibatches, early stopping on the validation segment), to show what
backprop reaches on the very same reservoir states. In `evo compare` each
seed also moves the reservoir seed, so the spread over seeds is the spread
over reservoirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.baselines.base import Baseline, pick_figures
from evo.config import ConfigError, ESNConfig, RunConfig, expect_section
from evo.files import atomic_write_json, open_run_dir
from evo.models import model_stem, write_model
from evo.tasks.timeseries import score_on_test
from evo.train import BaselineRun, EpochReporting, TrainResult, trainer_from_config
from networks.esn import ESNReadoutSpec, Reservoir, ReservoirStack, fit_readouts, readout_features
from networks.esn.reservoir import weights_to_vector


def esn_section(config: RunConfig) -> ESNConfig:
    """The config's ``[network]`` section, an ESN's (these baselines run for ``network.type = "esn"`` only)."""
    return expect_section(config.network, ESNConfig, "network")


def recipe_reservoir(config: RunConfig, n_inputs: int) -> Reservoir:
    """The config's default-recipe reservoir: the [network] settings but ``ridge`` are the Reservoir's of the same names."""
    return Reservoir(**config.network.model_dump(exclude={"type", "ridge", "dtype"}), n_inputs=n_inputs)


def run_recipe(config: RunConfig, task) -> dict[str, Any]:
    """Figures of the standard recipe: build the reservoir, ridge readout, score on val and test."""
    t0 = time.perf_counter()
    weights = recipe_reservoir(config, task.n_inputs).build()
    figures = score_on_test(task.data, weights, esn_section(config).ridge, task.horizon, task.starts)
    return {"wall_seconds": time.perf_counter() - t0, "n_params": _readout_size(config, task), **figures}


def run_gd_readout(config: RunConfig, task, on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """The recipe's reservoir with its readout trained by gradient descent (the [train] section's settings)."""
    from networks import MLP

    data, t = task.data, config.train
    t0 = time.perf_counter()
    weights = recipe_reservoir(config, task.n_inputs).build()
    states = ReservoirStack([weights]).run(data.inputs[None, : data.val_end])[0, 0]  # (T, units)
    features = readout_features(data.inputs[: data.val_end], states)[:, 1:]  # [u, x]; the layer has its own bias
    train, val = slice(data.washout, data.train_end), slice(data.train_end, data.val_end)
    readout = MLP((features.shape[1], data.targets.shape[1]), "identity", "identity")
    trainer = trainer_from_config(readout, "mse", t, seed=config.seed, dropout=0.0)
    trainer.fit(features[train], data.targets[train], features[val], data.targets[val], on_epoch=on_epoch)
    ((W, b),) = readout.unflatten(np.asarray(trainer.params_)[None])
    W_out = np.concatenate([b[0].T, W[0].T], axis=1)  # (n_out, 1 + n_in + units), the ridge readout's layout
    wall = time.perf_counter() - t0
    figures = score_on_test(data, weights, esn_section(config).ridge, task.horizon, task.starts, W_out=W_out)
    return {
        "wall_seconds": wall,
        "epochs": len(trainer.history_),
        "best_epoch": trainer.best_epoch_,
        "stopped_early": bool(trainer.stopped_early_),
        "samples_seen": trainer.history_[-1]["samples_seen"] if trainer.history_ else 0,
        "n_params": _readout_size(config, task),
        **figures,
    }


def recipe_model(config: RunConfig, task) -> tuple[ESNReadoutSpec, np.ndarray]:
    """The recipe's fitted network (reservoir and ridge readout fitted on washout + train), as a saved model holds it."""
    reservoir = recipe_reservoir(config, task.n_inputs)
    weights = reservoir.build()
    data = task.data
    W_out, _ = fit_readouts(
        ReservoirStack([weights]),
        data.inputs[: data.train_end],
        data.targets[: data.train_end],
        data.washout,
        np.array([esn_section(config).ridge]),
    )
    spec = ESNReadoutSpec(reservoir, task.n_outputs)
    return spec, spec.pack(W_out[0], weights_to_vector(weights))


def _readout_size(config: RunConfig, task) -> int:
    return (1 + task.n_inputs + esn_section(config).units) * task.n_outputs


class ESNBaselineRun(BaselineRun):
    """`evo train` for an echo-state network: the standard recipe (ridge readout) and a gradient-descent readout.

    Run directory: ``config.toml``, ``metrics.csv`` and ``events.log`` (the
    gradient-descent readout's epochs, written by the same reporters as
    :class:`~evo.train.TrainingRun`'s, which ``reporters`` follow),
    ``status.json``, ``model.json`` + ``model.npz`` (the recipe's fitted
    network), ``summary.json`` (both methods' figures; the top-level test
    figures are the recipe's).
    """

    def _prepare(self) -> None:
        """No ``init_from`` (the readout is refitted in closed form); ``trace_test`` is ignored (figures are taken once, at the end)."""
        if self.init_from:
            raise ConfigError("config error: --init-from: not available for echo-state networks (their readout is refitted in closed form)")

    def run(self) -> TrainResult:
        """Score the recipe, train the readout (its epochs told to the reporters), write the run directory."""
        cfg = self.config
        run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, f"{cfg.name}-train", tomli_w.dumps(cfg.to_dict()))
        recipe = run_recipe(cfg, self.task)
        reporting = EpochReporting(run_dir, cfg, self.progress, self.reporters)
        history: list[dict[str, Any]] = []

        def on_epoch(row: dict[str, Any]) -> None:
            history.append(dict(row))
            reporting.on_epoch(row)

        try:
            reporting.start()
            gd = run_gd_readout(cfg, self.task, on_epoch=on_epoch)
            reporting.stop("early_stopping" if gd["stopped_early"] else "epochs")
            tests = {k: v for k, v in recipe.items() if k.startswith("test_") or k.startswith("val_")}
            summary = {
                "name": cfg.name,
                "method": "esn_recipe_and_gd_readout",
                "seed": cfg.seed,
                "wall_seconds": recipe["wall_seconds"] + gd["wall_seconds"],
                "n_params": recipe["n_params"],
                "recipe": recipe,
                "gd_readout": gd,
                "network": cfg.network.model_dump(),
                "task": self.task.describe(),
                **tests,
            }
            spec, params = recipe_model(cfg, self.task)
            write_model(model_stem(run_dir), self.task, spec, params, "the standard ESN recipe (ridge readout)", tests)
            atomic_write_json(run_dir / "summary.json", summary)
            reporting.end(summary)
        finally:
            reporting.close()
        return TrainResult(run_dir, summary, params, spec, history)


class ESNRecipeBaseline(Baseline):
    """Time series: evolved reservoirs against the standard recipe and against a gradient-descent readout."""

    metrics = {
        "test_nrmse": ("one-step test NRMSE", "sci"),
        "test_nrmse_free_run": ("closed-loop NRMSE (horizon)", "sci"),
        "wall_seconds": ("wall s", "seconds"),
        "sample_forward_passes": ("reservoir/readout sample passes", "sci"),
        "n_params": ("trained parameters", "int"),
    }
    spread = "reservoir seeds"
    median_metrics = ("test_nrmse", "test_nrmse_free_run")
    plotted_metric = "test_nrmse"
    passes_counting = (
        "evolution: evaluations x reservoir steps per evaluation; ESN recipe: reservoir steps over washout+train+val; "
        "gradient-descent readout: those steps + readout samples seen x 2 (forward + backward)"
    )
    run_type = ESNBaselineRun

    def labels(self, config: RunConfig) -> dict[str, str]:
        """The recipe and the recipe with a gradient-descent readout."""
        return {"recipe": "standard recipe (ridge readout)", "gd_readout": f"recipe + gradient-descent readout ({config.train.optimizer})"}

    def seed_config(self, data: dict[str, Any], offset: int) -> dict[str, Any]:
        """A new reservoir per seed."""
        return {**data, "network": {**data["network"], "seed": data["network"]["seed"] + offset}}

    def compare_rows(
        self, config: RunConfig, out_dir: Path, progress: bool, evolution: dict[str, Any]
    ) -> tuple[dict[str, dict], dict[str, list]]:
        """Both methods' figures; the reservoir steps they run count as sample passes, evolution's parameters add the readout."""
        run = self.make_run(config, run_dir=out_dir / f"baselines-seed{config.seed}", progress=progress)
        summary = run.run().summary
        recipe, gd, steps = summary["recipe"], summary["gd_readout"], run.task.data.val_end
        return {
            "evolution": {"n_params": recipe["n_params"] + evolution["n_params"]},  # readout + the evolved genome
            "recipe": {**pick_figures(recipe, self.metrics), "sample_forward_passes": steps},
            "gd_readout": {
                **pick_figures(gd, self.metrics),
                "sample_forward_passes": steps + 2 * gd["samples_seen"],
                "epochs": gd["epochs"],
            },
        }, {}

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        """One line per method: one-step and closed-loop NRMSE, wall time."""
        lines = []
        for method in ("recipe", "gd_readout"):
            m = summary[method]
            lines.append(
                f"{method:11s} test_nrmse {m['test_nrmse']:.4g}  NRMSE{m.get('free_run_horizon', '')} "
                f"{m.get('test_nrmse_free_run', float('nan')):.4g}  wall {m['wall_seconds']:.2f} s"
            )
        return lines
