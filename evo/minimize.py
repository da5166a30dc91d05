"""``evo.minimize``: a Python function minimised on the run loop, in the manner of ``scipy.optimize`` and pycma's ``fmin``.

    import evo
    from evo.functions import rastrigin
    result = evo.minimize(rastrigin, dimension=10, bounds=(-5.12, 5.12), strategy="cmaes",
                          budget=200_000, seed=1, options={"active": True, "restarts": 9})
    result.solution, result.value, result.evaluations, result.run_dir

It builds the same run as ``[task] type = "function"`` in a config (with the
function object itself, so a lambda or a function defined in a notebook
works), runs it through :class:`evo.run.EvolutionRun` and so writes the same
run directory: config, metrics, checkpoints, the fitness plot, the summary.
``workers=N`` evaluates on a loopback-only local Ray instance (or the cluster
in ``RAY_ADDRESS``); the function travels to the workers by value when it
lives in ``__main__``, else its module is shipped with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evo.config import ConfigError, parse_config
from evo.config.tasks import FunctionTaskConfig

__all__ = ["MinimizeResult", "minimize"]


@dataclass
class MinimizeResult:
    """The best solution found, its value (the function's own sign), the evaluations spent and where the run was written."""

    solution: np.ndarray
    value: float
    evaluations: int
    run_dir: Path
    stopped_by: str
    summary: dict[str, Any]

    @property
    def x(self) -> np.ndarray:
        """scipy's name for :attr:`solution`."""
        return self.solution

    @property
    def fun(self) -> float:
        """scipy's name for :attr:`value`."""
        return self.value

    @property
    def nfev(self) -> int:
        """scipy's name for :attr:`evaluations`."""
        return self.evaluations


def _reference(function: Callable[..., Any]) -> str:
    """A ``module:name`` label for the config (valid as a reference; resumable when it is importable)."""
    module = getattr(function, "__module__", None) or "__main__"
    name = re.sub(r"\W", "_", getattr(function, "__qualname__", None) or type(function).__name__).strip("_") or "function"
    return f"{module}:{name if name[0].isalpha() else 'f_' + name}"


def _config_bounds(bounds: Sequence[Any], dimension: int) -> list[Any]:
    """The config's ``bounds`` from ``minimize``'s: ``(low, high)`` for every dimension, or one ``(low, high)`` pair per dimension as scipy.optimize takes them."""
    box = np.asarray(bounds, dtype=np.float64)
    if box.shape == (2,):
        return box.tolist()
    if box.shape == (dimension, 2):
        return box.T.tolist()  # the config's form: [[low_1, ..., low_n], [high_1, ..., high_n]]
    raise ValueError(f"bounds: expected (low, high) or {dimension} (low, high) pairs, one per dimension, got an array of shape {box.shape}")


def minimize(
    function: Callable[..., Any],
    dimension: int,
    bounds: Sequence[Any] | None = None,
    strategy: str = "cmaes",
    budget: int = 10_000,
    workers: int | None = None,
    seed: int = 0,
    *,
    population: int | None = None,
    options: dict[str, Any] | None = None,
    representation: str = "real",
    vectorized: bool = False,
    x0: Sequence[float] | None = None,
    target: float | None = None,
    maximize: bool = False,
    out: str | Path = "runs",
    name: str = "minimize",
    progress: bool = False,
) -> MinimizeResult:
    """Minimise (or, with ``maximize=True``, maximise) ``function`` within ``budget`` evaluations; a run directory is written.

    ``bounds``: ``(low, high)`` for every dimension, or a sequence of
    ``dimension`` ``(low, high)`` pairs, one per dimension, as
    ``scipy.optimize.minimize`` takes them. The run is the one ``evo run``
    makes of a ``function`` task (see the README's "Your own problem").
    """
    from evo.run import EvolutionRun
    from evo.tasks.function import FunctionTask
    from evo.tasks.genome import GenomeSpace

    task_section: dict[str, Any] = {
        "type": "function",
        "callable": _reference(function),
        "dimension": dimension,
        "minimize": not maximize,
        "vectorized": vectorized,
        "representation": representation,
    }
    if bounds is not None:
        task_section["bounds"] = _config_bounds(bounds, dimension)
    if x0 is not None:
        task_section["x0"] = np.asarray(x0, dtype=np.float64).tolist()
    if target is not None:
        task_section["target"] = float(target)
    strategy_section: dict[str, Any] = {"type": strategy, **(options or {})}
    if population is not None:
        strategy_section["population"] = population
    data: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "generations": 10_000_000,  # the budget is what stops the run
        "max_evaluations": budget,
        "out": str(out),
        "task": task_section,
        "strategy": strategy_section,
    }
    if workers is not None:
        data["evaluator"] = {"type": "ray", "workers": workers}
    config = parse_config(data)
    t = config.task
    assert isinstance(t, FunctionTaskConfig)
    lower, upper = t.bounds if t.bounds is not None else (None, None)
    try:
        space = GenomeSpace(t.dimension, lower, upper, t.representation, x0=None if t.x0 is None else np.array(t.x0))
        task = FunctionTask(function, space, minimize=t.minimize, vectorized=t.vectorized, target=t.target, field="function")
    except ValueError as exc:
        raise ConfigError(f"config error: {exc}") from None
    result = EvolutionRun(config, progress=progress, task=task).run()
    s = result.summary
    return MinimizeResult(
        solution=np.asarray(s["best_solution"]),
        value=float(s["best_value"]),
        evaluations=int(s["evaluations"]),
        run_dir=result.run_dir,
        stopped_by=str(s["stopped_by"]),
        summary=s,
    )
