"""The interface of a baseline: what `evo train` runs for a task, and how `evo compare` reports it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from evo.config import RunConfig

#: metric key -> (column title, number format: "fixed", "sci", "seconds" or "int")
Metrics = dict[str, tuple[str, str]]


class Baseline(ABC):
    """A non-evolutionary method (or several) run on the same network, split and seed as evolution.

    Subclasses set the class attributes and implement the three abstract methods; a
    task names its baseline by the key of :data:`evo.baselines.BASELINES`.
    """

    #: the columns of `evo compare`'s table
    metrics: Metrics
    #: what the seeds of `evo compare` vary, as its table says
    spread: str = "seeds"
    #: metrics the table also gives as a median (skewed ones)
    median_metrics: tuple[str, ...] = ()
    #: the held-out figure `evo compare` plots against wall time and passes (None: no plot)
    plotted_metric: str | None = None
    #: how `evo compare` counts each method's sample-forward passes
    passes_counting: str = "evolution: evaluations x samples per evaluation"
    #: the run class :meth:`make_run` builds (its constructor takes make_run's arguments as keywords)
    run_type: type

    def make_run(
        self,
        config: RunConfig,
        task: Any = None,
        run_dir: str | Path | None = None,
        progress: bool = True,
        init_from: str | Path | None = None,
        trace_test: bool = False,
    ) -> Any:
        """The run object (built and validated, nothing written; ``.run()`` executes it); ``task`` if already built."""
        return self.run_type(config, run_dir=run_dir, progress=progress, init_from=init_from, trace_test=trace_test, task=task)

    @abstractmethod
    def labels(self, config: RunConfig) -> dict[str, str]:
        """The table label of every method it reports, in table order."""

    def seed_config(self, data: dict[str, Any], offset: int) -> dict[str, Any]:
        """The config dict of `evo compare`'s seed ``offset`` (its ``seed`` already moved); as is by default."""
        return data

    @abstractmethod
    def compare_rows(
        self, config: RunConfig, out_dir: Path, progress: bool, evolution: dict[str, Any]
    ) -> tuple[dict[str, dict], dict[str, list]]:
        """Run it for one seed of `evo compare` (run directories under ``out_dir``) beside evolution's ``summary``.

        Returns the figures of each method (an ``"evolution"`` entry updates
        evolution's row) and the held-out trace of each method that has one.
        """

    @abstractmethod
    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        """What `evo train` prints of a finished run's summary."""


def pick_figures(summary: dict[str, Any], metrics: Metrics) -> dict[str, Any]:
    """The table's metrics out of a run summary (a Boolean task's squared error stands for its loss)."""
    picked = {k: summary[k] for k in (*metrics, "test_mse") if k in summary}
    if "test_loss" not in picked and "test_mse" in picked:
        picked["test_loss"] = picked["test_mse"]
    return picked


def held_out_line(summary: dict[str, Any]) -> str:
    """The ``test_*`` figures of a summary on one line."""
    figures = {k: v for k, v in summary.items() if k.startswith("test_") and isinstance(v, (int, float))}
    return "held-out: " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
