"""`evo train`: the gradient-descent baseline on the same network, task and split.

The network spec, the flat parameter layout, the data split and the starting
weights are the ones evolution uses (the same ``initial_genome`` for the same
seed), so the two methods stand on the same footing; ``init_from`` starts
from an evolved genome instead, to fine-tune it by backprop.

Run directory: ``config.toml``, ``metrics.csv`` (one row per epoch),
``best_genome.npz`` + ``best_genome.json``, ``loss.png``, ``summary.json``,
``events.log``; written by the same reporters as an evolution run's
(:mod:`evo.reporters`).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.build import build_network, build_task, initial_genome
from evo.config import ConfigError, RunConfig
from evo.files import atomic_write_json, load_npz, open_run_dir, save_genome
from evo.models import model_stem, write_model
from evo.reporters import (
    Reporter,
    Reporters,
    RunInfo,
    RunState,
    TestTrace,
    float_cell,
    run_dir_reporters,
    seconds_cell,
)
from evo.run import parameter_counts
from evo.seeding import STREAM_TEST, stream_seed
from evo.tasks.base import Task

STREAM_TRAIN = 7
#: metrics.csv of a training run: each column and how its cells are written
TRAIN_CELLS: dict[str, Callable[[Any], str]] = {
    "epoch": str,
    "train_loss": float_cell,
    "val_loss": float_cell,
    "val_accuracy": float_cell,
    "samples_seen": str,
    "sample_forward_passes": str,
    "wall_seconds": seconds_cell(4),
}
TRAIN_COLUMNS = list(TRAIN_CELLS)
#: the [train] fields only the policy-gradient baseline reads (evo.baselines.policy_gradient)
POLICY_GRADIENT_FIELDS = ("iterations", "episodes_per_update", "gamma", "entropy_bonus", "max_episode_steps", "init_std")
#: a backward pass is counted as one more pass over the sample (forward + backward = 2)
PASSES_PER_TRAINING_SAMPLE = 2


@dataclass
class TrainResult:
    """What a finished training run leaves."""

    run_dir: Path
    summary: dict[str, Any]
    params: np.ndarray
    network: Any
    history: list[dict[str, Any]]


def supervised_data(task) -> dict[str, Any]:
    """Training and validation arrays of a labelled task, and the loss that fits its output."""
    from evo.tasks.boolean import ParityTask
    from evo.tasks.classification import ClassificationTask
    from evo.tasks.forecast import ForecastTask
    from evo.tasks.regression import RegressionTask

    if isinstance(task, ClassificationTask):
        s = task.split
        return {"X_train": s.X_train, "y_train": s.y_train, "X_val": s.X_val, "y_val": s.y_val, "loss": "cross_entropy"}
    if isinstance(task, RegressionTask):
        r = task.split
        return {"X_train": r.X_train, "y_train": r.y_train, "X_val": r.X_val, "y_val": r.y_val, "loss": "mse"}
    if isinstance(task, ForecastTask):
        (X_train, y_train), (X_val, y_val) = task.segment("train"), task.segment("val")
        return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val, "loss": "mse"}
    if isinstance(task, ParityTask):
        # The truth table is all there is: it is also the validation set.
        return {"X_train": task.inputs, "y_train": task.targets, "X_val": task.inputs, "y_val": task.targets, "loss": "mse"}
    raise ConfigError(
        f"config error: task.type = {task.kind!r} ({task.name}): backprop needs labelled data; "
        "evo train and evo compare work on xor, parity, digits, dataset (classification or regression) and forecast tasks, "
        "and on control tasks by policy gradient (REINFORCE)"
    )


def trainer_from_config(network, loss: str, train, seed: int, dropout: float | None = None):
    """A :class:`~networks.trainer.Trainer` with a config's ``[train]`` settings."""
    from networks.trainer import Trainer

    # The [train] settings are the Trainer's arguments of the same names; dropout may be overridden, patience 0 means none.
    settings = train.model_dump(exclude={"dropout", "patience", *POLICY_GRADIENT_FIELDS})
    return Trainer(
        network, loss=loss, **settings, dropout=train.dropout if dropout is None else dropout, patience=train.patience or None, seed=seed
    )


def load_genome(run_dir: str | Path, network) -> np.ndarray:
    """The best genome of a run directory, checked against ``network``'s architecture."""
    run_dir = Path(run_dir)
    npz, meta = run_dir / "best_genome.npz", run_dir / "best_genome.json"
    if not npz.is_file() or not meta.is_file():
        raise ConfigError(f"config error: --init-from {str(run_dir)!r}: no best_genome.npz/best_genome.json there")
    described = json.loads(meta.read_text())["network"]
    ours = json.loads(json.dumps(network.describe()))  # the same JSON normalisation the file went through
    if described.get("type") != ours.get("type"):
        raise ConfigError(
            f"config error: --init-from {str(run_dir)!r}: its network is a {described.get('type')!r}, this config's a {ours.get('type')!r}"
        )
    differing = sorted(k for k in set(described) | set(ours) if k != "layout" and described.get(k) != ours.get(k))
    if differing:
        raise ConfigError(
            f"config error: --init-from {str(run_dir)!r}: its network differs from this config's in "
            + ", ".join(f"{k} ({described.get(k)!r} vs {ours.get(k)!r})" for k in differing)
        )
    return load_npz(npz)["params"].astype(np.float64)


class EpochReporting:
    """A training run's reporters and clock: metrics.csv, events.log, status.json, the progress bar, then ``extra`` reporters.

    :meth:`on_epoch` is the trainer's epoch callback: it makes the metrics row
    and tells every reporter (one ``on_generation`` per epoch); :meth:`report`
    tells them a row made elsewhere (``cells``: metrics.csv's columns, the
    first one counting the epochs or iterations, of which ``total`` are
    planned). The time spent reporting is kept off the run's clock. Call
    :meth:`start`, then :meth:`stop` and :meth:`end` when training is done,
    and :meth:`close` always.
    """

    def __init__(
        self,
        run_dir: Path,
        config: RunConfig,
        progress: bool,
        extra: Sequence[Reporter] = (),
        cells: dict[str, Callable[[Any], str]] = TRAIN_CELLS,
        total: int | None = None,
    ) -> None:
        self.reporters = Reporters(run_dir_reporters(run_dir, cells, progress) + list(extra))
        self.info = RunInfo(run_dir, config, config.name, config.train.epochs if total is None else total, "training")
        self.state = RunState()
        self._counter = next(iter(cells))
        self._started = time.perf_counter()
        self._reporting_seconds = 0.0

    def start(self) -> None:
        """Tell the reporters the run starts."""
        self.reporters.on_start(self.info, self.state)

    def elapsed(self) -> float:
        """Training seconds so far (reporting excluded)."""
        return time.perf_counter() - self._started - self._reporting_seconds

    def on_epoch(self, epoch: dict[str, Any]) -> None:
        """One epoch of the trainer (its history row): the metrics row, to every reporter."""
        self.report(
            {
                "epoch": epoch["epoch"],
                "train_loss": epoch["train_loss"],
                "val_loss": epoch.get("val_loss"),
                "val_accuracy": epoch.get("val_accuracy"),
                "samples_seen": epoch["samples_seen"],
                "sample_forward_passes": epoch["samples_seen"] * PASSES_PER_TRAINING_SAMPLE,
            }
        )

    def report(self, row: dict[str, Any]) -> None:
        """One metrics row (its ``wall_seconds`` set here), to every reporter."""
        state = self.state
        state.generation = row[self._counter]
        state.wall_seconds = row["wall_seconds"] = self.elapsed()
        state.rows.append(row)
        t0 = time.perf_counter()
        self.reporters.on_generation(state, row)
        self._reporting_seconds += time.perf_counter() - t0  # reporting, not training: kept off the clock

    def stop(self, stopped_by: str) -> None:
        """Training is over (``epochs`` or ``early_stopping``): the clock stops."""
        self.state.wall_seconds = time.perf_counter() - self._started - self._reporting_seconds
        self.state.stopped_by = stopped_by

    def end(self, summary: dict[str, Any]) -> None:
        """Tell the reporters the run ended with ``summary`` (already written)."""
        self.reporters.on_end(self.state, summary)

    def close(self) -> None:
        """Close every reporter."""
        self.reporters.close()


class BaselineRun(ABC):
    """What `evo train` runs (a :class:`~evo.baselines.Baseline`'s run): built and validated in the constructor, executed by :meth:`run`.

    ``reporters`` are heard after the built-in ones (:class:`EpochReporting`),
    one ``on_generation`` per epoch; ``task`` if already built.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path | None = None,
        progress: bool = True,
        init_from: str | Path | None = None,
        trace_test: bool = False,
        reporters: Sequence[Reporter] = (),
        task: Task | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.task = task if task is not None else build_task(config)
        self.init_from = init_from
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.trace_test = trace_test
        self.test_trace: list[dict[str, Any]] = []
        self.reporters = list(reporters)
        self._prepare()

    @abstractmethod
    def _prepare(self) -> None:
        """Build and check what the run needs beyond the task (ConfigError when the config cannot run)."""

    @abstractmethod
    def run(self) -> TrainResult:
        """Train, then write the run directory."""


class TrainingRun(BaselineRun):
    """One backprop training run, built and validated in the constructor, executed by :meth:`run`.

    Its run directory is written by the same reporters as an evolution run's
    (metrics.csv, events.log, the progress bar); ``reporters`` are heard after
    them, one ``on_generation`` per epoch.
    """

    def _prepare(self) -> None:
        """The labelled data, the network and its starting weights (evolution's, or ``init_from``'s best genome)."""
        self.data = supervised_data(self.task)
        self.network = build_network(self.config, self.task)
        self.init_params = load_genome(self.init_from, self.network) if self.init_from else initial_genome(self.config, self.network)

    def run(self) -> TrainResult:
        """Train, then write the run directory."""
        cfg, t = self.config, self.config.train
        trainer = trainer_from_config(self.network, self.data["loss"], t, seed=stream_seed(cfg.seed, STREAM_TRAIN))
        run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, f"{cfg.name}-train", tomli_w.dumps(cfg.to_dict()))
        test_seed = stream_seed(cfg.seed, STREAM_TEST)
        extra: list[Reporter] = []
        if self.trace_test:
            extra.append(TestTrace(self.task, self.network, lambda _state: trainer.current_params(), test_seed, self.test_trace))
        reporting = EpochReporting(run_dir, cfg, self.progress, extra + self.reporters)
        try:
            reporting.start()
            trainer.fit(
                self.data["X_train"],
                self.data["y_train"],
                self.data["X_val"],
                self.data["y_val"],
                init_params=self.init_params,
                on_epoch=reporting.on_epoch,
            )
            reporting.stop("early_stopping" if trainer.stopped_early_ else "epochs")
            summary = self._finish(trainer, reporting.state, run_dir, test_seed)
            reporting.end(summary)
        finally:
            reporting.close()
        return TrainResult(run_dir, summary, np.asarray(trainer.params_, dtype=np.float64), self.network, trainer.history_)

    def _finish(self, trainer, state: RunState, run_dir: Path, test_seed: int) -> dict[str, Any]:
        """Test the trained parameters, write them, the loss plot and the summary; return the summary."""
        cfg, t = self.config, self.config.train
        params = np.asarray(trainer.params_, dtype=np.float64)
        history = trainer.history_
        samples_seen = history[-1]["samples_seen"] if history else 0
        test_figures = self.task.test(self.network, params, test_seed)
        val_figures = {k: v for k, v in self.task.validate(self.network, params, 0).items() if k != "val_score"}
        save_genome(
            run_dir / "best_genome",
            params,
            {"network": self.network.describe(), "task": self.task.describe(), "source": "backprop", "best_epoch": trainer.best_epoch_},
        )
        write_model(model_stem(run_dir), self.task, self.network, params, f"backprop ({t.optimizer})", test_figures)
        from evo.plots import plot_loss_curve

        plot_loss_curve(history, run_dir / "loss.png", f"{cfg.name}: backprop ({t.optimizer}) on {self.task.name}", self.data["loss"])
        summary = {
            "name": cfg.name,
            "method": "backprop",
            "seed": cfg.seed,
            "epochs": len(history),
            "best_epoch": trainer.best_epoch_,
            "stopped_early": bool(trainer.stopped_early_),
            "wall_seconds": state.wall_seconds,
            "samples_seen": samples_seen,
            "sample_forward_passes": samples_seen * PASSES_PER_TRAINING_SAMPLE,
            **parameter_counts(self.network, params),
            "init_from": str(self.init_from) if self.init_from else None,
            "train": t.model_dump(),
            "network": self.network.describe(),
            "task": self.task.describe(),
            **val_figures,
            **test_figures,
        }
        atomic_write_json(run_dir / "summary.json", summary)
        return summary
