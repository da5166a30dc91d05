"""The backprop baseline: the same network, split and starting weights, trained by gradient descent (`evo.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo.baselines.base import Baseline, held_out_line, pick_figures
from evo.config import RunConfig
from evo.train import TrainingRun


class BackpropBaseline(Baseline):
    """Labelled tasks: evolution against the trainer (:class:`evo.train.TrainingRun`)."""

    metrics = {
        "test_accuracy": ("test accuracy", "fixed"),
        "test_loss": ("test loss", "sci"),
        "wall_seconds": ("training wall s", "seconds"),
        "sample_forward_passes": ("sample-forward passes", "sci"),
        "n_params": ("parameters", "int"),
    }
    plotted_metric = "test_accuracy"
    passes_counting = "evolution: evaluations x samples per evaluation; backprop: samples seen x 2 (forward + backward)"
    run_type = TrainingRun  # it raises ConfigError for a task without labelled data

    def labels(self, config: RunConfig) -> dict[str, str]:
        """One method: backprop with the config's optimizer."""
        return {"backprop": f"backprop ({config.train.optimizer})"}

    def compare_rows(
        self, config: RunConfig, out_dir: Path, progress: bool, evolution: dict[str, Any]
    ) -> tuple[dict[str, dict], dict[str, list]]:
        """Train, with the held-out figure traced at every epoch."""
        run = self.make_run(config, run_dir=out_dir / f"backprop-seed{config.seed}", progress=progress, trace_test=True)
        summary = run.run().summary
        return {"backprop": {**pick_figures(summary, self.metrics), "epochs": summary["epochs"]}}, {"backprop": run.test_trace}

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        """Epochs, wall time, size, held-out figures."""
        s = summary
        return [
            f"epochs {s['epochs']} (best {s['best_epoch']}{', stopped early' if s['stopped_early'] else ''})  "
            f"wall {s['wall_seconds']:.2f} s  parameters {s['n_params']}",
            held_out_line(s),
        ]


class RegressionBackpropBaseline(BackpropBaseline):
    """Regression tasks: the same trainer with the mean squared error; the table shows MSE and R^2."""

    metrics = {
        "test_mse": ("test MSE", "sci"),
        "test_r2": ("test R²", "fixed"),
        "wall_seconds": ("training wall s", "seconds"),
        "sample_forward_passes": ("sample-forward passes", "sci"),
        "n_params": ("parameters", "int"),
    }
    plotted_metric = "test_r2"


class BackpropForecastBaseline(BackpropBaseline):
    """Forecasting: evolution against the same network trained by gradient descent (BPTT for an RNN), scored by NRMSE."""

    metrics = {
        "test_nrmse": ("one-step test NRMSE", "sci"),
        "test_nrmse_free_run": ("closed-loop NRMSE (horizon)", "sci"),
        "wall_seconds": ("training wall s", "seconds"),
        "sample_forward_passes": ("sample-forward passes", "sci"),
        "n_params": ("parameters", "int"),
    }
    median_metrics = ("test_nrmse", "test_nrmse_free_run")
    plotted_metric = "test_nrmse"
