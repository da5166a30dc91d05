"""Pinned behaviour of a run that the README promises: its files read back, its stops, its choice of genome, its failures.

Tasks are wrapped (as tests/test_run.py does) to watch what the run loop asks of them, so the checks need no
knowledge of the loop's internals.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import tomllib

import matplotlib.figure
import numpy as np
import ray
from pydantic import BaseModel

from evo import EvolutionRun, RunConfig, parse_config, run_evolution
from tests.helpers import DIGITS, XOR, assert_png, metrics_without_time

# Ray workers cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _WatchedTask:
    """Wraps a task: records every evaluation and validation; optionally sleeps, or fails some individuals."""

    def __init__(self, inner, sleep: float = 0.0, flaky: bool = False) -> None:
        self.inner, self.sleep, self.flaky = inner, sleep, flaky
        self.evaluated: list[tuple[np.ndarray, np.ndarray]] = []
        self.validated: list[tuple[np.ndarray, dict]] = []

    def evaluate(self, network, genomes, seeds, generation_seed):
        time.sleep(self.sleep)
        fitness = np.asarray(self.inner.evaluate(network, genomes, seeds, generation_seed), dtype=float)
        if self.flaky:
            if np.any(seeds % 4 == 1):  # raise for the batch, and again for the individual alone
                raise RuntimeError(f"simulated crash in process {os.getpid()}")
            fitness = np.where(seeds % 4 == 2, np.nan, fitness)
        self.evaluated.append((np.array(genomes), fitness.copy()))
        return fitness

    def validate(self, network, genome, seed):
        figures = self.inner.validate(network, genome, seed)
        self.validated.append((np.array(genome), dict(figures)))
        return figures

    def __getattr__(self, name):
        if name.startswith("__") or name == "inner":  # unpickling looks these up before `inner` exists
            raise AttributeError(name)
        return getattr(self.inner, name)


def _watched_run(config: dict, run_dir, **wrapper) -> tuple[EvolutionRun, _WatchedTask]:
    run = EvolutionRun(parse_config(config), run_dir=run_dir, progress=False)
    run.task = watched = _WatchedTask(run.task, **wrapper)
    return run, watched


# ------------------------------------------------------------------ files read back
def _assert_defaults_written(section_data: dict, model, given: dict, where: str) -> None:
    """Every field of ``model`` with a non-None value is in the file; fields the config did not give hold the default."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            assert name not in section_data, f"{where}{name}"
            continue
        assert name in section_data, f"{where}{name} is missing from config.toml"
        if isinstance(value, BaseModel):
            _assert_defaults_written(section_data[name], value, given.get(name, {}), f"{where}{name}.")
        elif name not in given:
            default = info.get_default(call_default_factory=True)
            expected = default.model_dump(mode="json", exclude_none=True) if isinstance(default, BaseModel) else default
            assert section_data[name] == expected, f"{where}{name}: {section_data[name]!r} != default {expected!r}"


def test_config_toml_holds_every_default_and_the_fitness_plot_its_three_curves(tmp_path, monkeypatch):
    saved = {}
    original_savefig = matplotlib.figure.Figure.savefig

    def recording_savefig(fig, path, *args, **kwargs):
        curves = {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.lines}
        saved[os.path.basename(str(path))] = curves
        return original_savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    config = {**XOR, "generations": 7, "target_fitness": None}
    result = run_evolution(parse_config(config), run_dir=tmp_path / "r")
    d = result.run_dir

    with open(d / "config.toml", "rb") as fh:
        written = tomllib.load(fh)
    resolved = parse_config(config)
    assert parse_config(written) == resolved
    _assert_defaults_written(written, resolved, config, "")
    for section in ("evaluator", "train"):  # sections the config never mentioned are written out whole
        assert written[section] == getattr(resolved, section).model_dump(mode="json", exclude_none=True), section
    assert isinstance(resolved, RunConfig) and written["checkpoint_every"] == 10 and written["out"] == "runs"

    assert_png(d / "fitness.png")
    (lines,) = [v for name, v in saved.items() if "fitness" in name]
    rows = metrics_without_time(d)
    assert len(lines) == 3  # mean, best of generation, best so far
    curves = list(lines.values())
    for column in ("mean", "best", "best_so_far"):
        expected = np.array([r[column] for r in rows])
        assert any(np.array_equal(expected, y) for y in curves), column


# ------------------------------------------------------------------ stops
def test_max_seconds_stops_at_the_first_generation_past_the_limit(tmp_path):
    config = {**XOR, "generations": 50, "target_fitness": None, "max_seconds": 0.2, "checkpoint_every": 100}
    run, _ = _watched_run(config, tmp_path / "slow", sleep=0.05)
    result = run.run()
    s = result.summary
    assert s["stopped_by"] == "max_seconds"
    assert 1 <= s["generations"] <= 4  # 4 generations of 0.05 s reach 0.2 s
    walls = [r["wall_seconds"] for r in result.metrics]
    assert walls[-1] >= 0.1995 and all(w <= 0.2 for w in walls[:-1])  # metrics.csv rounds to milliseconds
    assert len(result.metrics) == s["generations"] and s["evaluations"] == 16 * s["generations"]
    state = json.loads((result.run_dir / "checkpoint" / "state.json").read_text())
    assert state["generation"] == s["generations"]  # the stop leaves a checkpoint to resume from
    instant = run_evolution(parse_config({**config, "max_seconds": 1e-9}), run_dir=tmp_path / "instant")
    assert instant.summary["stopped_by"] == "max_seconds" and instant.summary["generations"] == 1


# ------------------------------------------------------------------ the genome kept
def test_the_genome_kept_is_the_better_of_the_two_candidates_on_validation(tmp_path):
    run, watched = _watched_run(DIGITS, tmp_path / "d")
    result = run.run()
    s = result.summary
    # The best individual evaluated, found here from what the task saw (the first to reach the highest fitness).
    best_fitness, best_individual = -math.inf, None
    for genomes, fitness in watched.evaluated:
        if fitness.max() > best_fitness:
            best_fitness, best_individual = fitness.max(), genomes[int(np.argmax(fitness))]
    assert s["best_fitness"] == best_fitness
    scores = [figures["val_score"] for _, figures in watched.validated]
    chosen_score = next(figures["val_score"] for g, figures in watched.validated if np.array_equal(g, result.best_genome))
    individual_score = next(figures["val_score"] for g, figures in watched.validated if np.array_equal(g, best_individual))
    # Every genome scored on validation was a candidate (the strategy's best at a validation) or a finalist:
    # the one kept has the highest score of them all, the best individual's included.
    assert chosen_score == max(scores) >= individual_score
    assert s["best_genome_source"] in ("strategy_best", "best_individual")
    assert (s["best_genome_source"] == "best_individual") == np.array_equal(result.best_genome, best_individual)
    chosen_figures = next(figures for g, figures in watched.validated if np.array_equal(g, result.best_genome))
    assert s["val_accuracy"] == chosen_figures["val_accuracy"]
    # SNES keeps its mean: a genome never evaluated as such, and here better on validation than the best sample.
    assert s["best_genome_source"] == "strategy_best" and chosen_score > individual_score


# ------------------------------------------------------------------ failures on Ray workers
def test_a_fitness_that_raises_on_a_ray_worker_gets_the_worst_fitness_and_the_run_goes_on(tmp_path, ray_local):
    config = {**XOR, "generations": 4, "target_fitness": None}
    serial_run, _ = _watched_run(config, tmp_path / "serial", flaky=True)
    serial = serial_run.run()
    ray_config = {**config, "evaluator": {"type": "ray", "workers": 2, "chunk_size": 4}}
    ray_run, _ = _watched_run(ray_config, tmp_path / "ray", flaky=True)
    result = ray_run.run()
    assert result.summary["evaluator"]["type"] == "ray"
    assert result.summary["generations"] == 4  # the run went on
    per_generation = [r["failures"] for r in result.metrics]
    assert all(f > 0 for f in per_generation) and result.summary["failures"] == sum(per_generation)
    assert metrics_without_time(result.run_dir) == metrics_without_time(serial.run_dir)  # same failures, same worst fitness
    assert all(r["best"] is not None and np.isfinite(r["best"]) for r in result.metrics)
    log = (result.run_dir / "events.log").read_text()
    assert log.count("failed evaluation(s) got the worst fitness") == 4
    pids = {int(p) for p in re.findall(r"simulated crash in process (\d+)", log)}
    assert pids and os.getpid() not in pids  # raised on a worker, not in this process
