"""`evo train`: the gradient-descent baseline on the same network, task and split.

The network spec, the flat parameter layout, the data split and the starting
weights are the ones evolution uses (the same ``initial_genome`` for the same
seed), so the two methods stand on the same footing; ``init_from`` starts
from an evolved genome instead, to fine-tune it by backprop.

Run directory: ``config.toml``, ``metrics.csv`` (one row per epoch),
``best_genome.npz`` + ``best_genome.json``, ``loss.png``, ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.build import build_network, build_task, initial_genome
from evo.config import ConfigError, RunConfig
from evo.files import atomic_save_npz, atomic_write_json, load_npz, open_run_dir
from evo.seeding import STREAM_TEST, stream_seed

STREAM_TRAIN = 7
TRAIN_COLUMNS = ["epoch", "train_loss", "val_loss", "val_accuracy", "samples_seen", "sample_forward_passes", "wall_seconds"]
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

    if isinstance(task, ClassificationTask):
        s = task.split
        return {"X_train": s.X_train, "y_train": s.y_train, "X_val": s.X_val, "y_val": s.y_val, "loss": "cross_entropy"}
    if isinstance(task, ParityTask):
        # The truth table is all there is: it is also the validation set.
        return {"X_train": task.inputs, "y_train": task.targets, "X_val": task.inputs, "y_val": task.targets, "loss": "mse"}
    raise ConfigError(
        f"config error: task.type = {task.kind!r} ({task.name}): backprop needs labelled data; "
        "evo train and evo compare work on xor, parity, digits and dataset tasks "
        "(a policy-gradient baseline for control tasks may come later)"
    )


def trainer_from_config(network, loss: str, train, seed: int, dropout: float | None = None):
    """A :class:`~networks.trainer.Trainer` with a config's ``[train]`` settings."""
    from networks.trainer import Trainer

    return Trainer(
        network, loss=loss, optimizer=train.optimizer, lr=train.lr, momentum=train.momentum, batch_size=train.batch_size,
        epochs=train.epochs, weight_decay=train.weight_decay, dropout=train.dropout if dropout is None else dropout,
        patience=train.patience or None, seed=seed,
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


class TrainingRun:
    """One backprop training run, built and validated in the constructor, executed by :meth:`run`."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path | None = None,
        progress: bool = True,
        init_from: str | Path | None = None,
        trace_test: bool = False,
        task=None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.task = task if task is not None else build_task(config)
        self.data = supervised_data(self.task)
        self.network = build_network(config, self.task)
        self.init_from = init_from
        self.init_params = load_genome(init_from, self.network) if init_from else initial_genome(config, self.network)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.trace_test = trace_test
        self.test_trace: list[dict[str, Any]] = []

    def run(self) -> TrainResult:
        """Train, then write the run directory."""
        cfg, t = self.config, self.config.train
        trainer = trainer_from_config(self.network, self.data["loss"], t, seed=stream_seed(cfg.seed, STREAM_TRAIN))
        run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, f"{cfg.name}-train", tomli_w.dumps(cfg.to_dict()))
        test_seed = stream_seed(cfg.seed, STREAM_TEST)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=t.epochs, desc=f"{cfg.name} (backprop)", unit="epoch", dynamic_ncols=True)
        metrics_fh = open(run_dir / "metrics.csv", "w", newline="")
        writer = csv.writer(metrics_fh)
        writer.writerow(TRAIN_COLUMNS)
        started = time.perf_counter()
        traced_seconds = 0.0

        def on_epoch(row: dict[str, Any]) -> None:
            nonlocal traced_seconds
            wall = time.perf_counter() - started - traced_seconds
            passes = row["samples_seen"] * PASSES_PER_TRAINING_SAMPLE
            writer.writerow([row["epoch"], repr(float(row["train_loss"])), _opt(row.get("val_loss")), _opt(row.get("val_accuracy")), row["samples_seen"], passes, f"{wall:.4f}"])
            metrics_fh.flush()
            if self.trace_test:
                t0 = time.perf_counter()
                self.test_trace.append({"epoch": row["epoch"], "wall_seconds": wall, "sample_forward_passes": passes, **self.task.test(self.network, trainer.current_params(), test_seed)})
                traced_seconds += time.perf_counter() - t0  # reporting, not training: kept off the clock
            if bar is not None:
                bar.update(1)
                val = row.get("val_accuracy")
                bar.set_postfix_str(f"loss {row['train_loss']:.4g}" + (f" val_acc {val:.4f}" if val is not None else "") + (f" val_loss {row['val_loss']:.4g}" if row.get("val_loss") is not None else ""), refresh=False)

        try:
            trainer.fit(self.data["X_train"], self.data["y_train"], self.data["X_val"], self.data["y_val"], init_params=self.init_params, on_epoch=on_epoch)
        finally:
            metrics_fh.close()
            if bar is not None:
                bar.close()
        wall_total = time.perf_counter() - started - traced_seconds
        params = np.asarray(trainer.params_, dtype=np.float64)
        history = trainer.history_
        samples_seen = history[-1]["samples_seen"] if history else 0
        test_figures = self.task.test(self.network, params, test_seed)
        val_figures = {k: v for k, v in self.task.validate(self.network, params, 0).items() if k != "val_score"}
        atomic_save_npz(run_dir / "best_genome.npz", {"params": params})
        atomic_write_json(run_dir / "best_genome.json", {"network": self.network.describe(), "task": self.task.describe(), "source": "backprop", "best_epoch": trainer.best_epoch_})
        _plot_losses(history, run_dir / "loss.png", f"{cfg.name}: backprop ({t.optimizer}) on {self.task.name}")
        summary = {
            "name": cfg.name,
            "method": "backprop",
            "seed": cfg.seed,
            "epochs": len(history),
            "best_epoch": trainer.best_epoch_,
            "stopped_early": bool(trainer.stopped_early_),
            "wall_seconds": wall_total,
            "samples_seen": samples_seen,
            "sample_forward_passes": samples_seen * PASSES_PER_TRAINING_SAMPLE,
            "n_params": self.network.n_params,
            "init_from": str(self.init_from) if self.init_from else None,
            "train": t.model_dump(),
            "network": self.network.describe(),
            "task": self.task.describe(),
            **val_figures,
            **test_figures,
        }
        atomic_write_json(run_dir / "summary.json", summary)
        return TrainResult(run_dir, summary, params, self.network, history)


def _opt(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _plot_losses(history: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    from evo.plots import save_figure  # also selects the Agg backend

    if not history:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], label="training loss")
    if history[0].get("val_loss") is not None:
        ax.plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
