"""Baselines: what `evo train` runs for a task, and what `evo compare` sets beside evolution.

A task names its baseline (``Task.baseline``), a key of :data:`BASELINES`:

* ``"backprop"`` -- the same network trained by gradient descent (:mod:`evo.baselines.backprop`);
* ``"backprop_regression"`` -- the same for regression tasks (mean squared error; MSE and R^2 in the table);
* ``"backprop_forecast"`` -- the same, for forecasting, reported by NRMSE;
* ``"policy_gradient"`` -- control tasks: REINFORCE on the same network, an RNN by BPTT over
  its episodes (:mod:`evo.baselines.policy_gradient`); ``"policy_gradient_double_pole"`` adds the
  double-pole benchmark's tests to the table;
* ``"esn_recipe"`` -- the echo-state network's standard recipe and a
  gradient-descent readout (:mod:`evo.baselines.esn`).

Adding a baseline is adding a :class:`~evo.baselines.base.Baseline` module and an entry here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo.baselines.backprop import BackpropBaseline, BackpropForecastBaseline, RegressionBackpropBaseline
from evo.baselines.base import Baseline, held_out_line, pick_figures
from evo.baselines.esn import ESNRecipeBaseline
from evo.baselines.policy_gradient import DoublePolePolicyGradientBaseline, PolicyGradientBaseline
from evo.build import build_task
from evo.config import ConfigError, RunConfig

BASELINES: dict[str, Baseline] = {
    "backprop": BackpropBaseline(),
    "backprop_regression": RegressionBackpropBaseline(),
    "backprop_forecast": BackpropForecastBaseline(),
    "esn_recipe": ESNRecipeBaseline(),
    "policy_gradient": PolicyGradientBaseline(),
    "policy_gradient_double_pole": DoublePolePolicyGradientBaseline(),
}

__all__ = ["BASELINES", "Baseline", "baseline_for", "held_out_line", "make_training_run", "pick_figures"]


def baseline_for(task: Any) -> Baseline:
    """The baseline a task names."""
    try:
        return BASELINES[task.baseline]
    except KeyError:
        raise ConfigError(f"config error: task {task.name!r} names baseline {task.baseline!r}; known: {sorted(BASELINES)}") from None


def make_training_run(
    config: RunConfig,
    run_dir: str | Path | None = None,
    progress: bool = True,
    init_from: str | Path | None = None,
    trace_test: bool = False,
) -> Any:
    """The baseline run of a config (built and validated; ``.run()`` executes it): backprop, or what its task names."""
    task = build_task(config)
    return baseline_for(task).make_run(config, task, run_dir=run_dir, progress=progress, init_from=init_from, trace_test=trace_test)
