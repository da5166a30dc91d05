"""A user's fitness function: from a config (serial, Ray, resume, plots), from Python (evo.minimize), and its bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import evo
from evo.config import ConfigError, load_config
from evo.functions import BENCHMARKS, ackley, ellipsoid, rastrigin, rosenbrock, sphere
from evo.run import EvolutionRun
from tests.helpers import metrics_without_time, write_config

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = textwrap.dedent(
    """
    import numpy as np

    CALLS = []

    def shifted(x, seed=None):
        # minimum 0 at x = 1.5; `seed` is accepted, so the run passes each individual's seed
        CALLS.append(seed)
        return float(np.sum((np.asarray(x) - 1.5) ** 2))

    def batch(X):
        return np.sum((X - 1.5) ** 2, axis=1)

    def profit(x):
        return float(-np.sum((np.asarray(x) - 2.0) ** 2))

    def wrong_shape(x):
        return np.asarray(x)

    def words(x):
        return "good"

    def explodes(x):
        raise RuntimeError("boom")

    def sometimes_nan(x):
        return float("nan") if x[0] > 0 else float(np.sum(x * x))

    NOT_CALLABLE = 3
    """
)


def _config(tmp_path: Path, module: str = "userfit", **task) -> Path:
    (tmp_path / f"{module}.py").write_text(USER_MODULE)
    data = {
        "generations": 30,
        "checkpoint_every": 5,
        "out": str(tmp_path / "runs"),
        "task": {"type": "function", "callable": f"{module}:shifted", "dimension": 4, "bounds": [-5, 5], **task},
        "strategy": {"type": "cmaes", "population": 8},
    }
    return write_config(tmp_path / "problem.toml", data)


def test_a_function_from_the_configs_folder_is_minimised_and_reported_in_its_own_sign(tmp_path):
    result = evo.run_evolution(_config(tmp_path))
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert s["best_value"] == pytest.approx(-s["best_fitness"]) and s["best_value"] < 0.05
    assert len(s["best_solution"]) == 4 and np.allclose(s["best_solution"], 1.5, atol=0.2)
    assert s["test_value"] == pytest.approx(s["best_value"])
    assert s["network"]["type"] == "solution" and s["strategy"]["type"] == "cmaes"
    assert (result.run_dir / "fitness.png").stat().st_size > 1000
    assert (result.run_dir / "checkpoint" / "state.json").is_file()
    assert "network" not in (result.run_dir / "config.toml").read_text().split("[task]")[0] + "".join(
        line for line in (result.run_dir / "config.toml").read_text().splitlines() if line.startswith("[network")
    )


def test_maximising_and_a_vectorised_function(tmp_path):
    up = evo.run_evolution(_config(tmp_path, callable="userfit:profit", minimize=False))
    assert up.summary["best_value"] == pytest.approx(up.summary["best_fitness"]) and up.summary["best_value"] > -0.05
    flat = evo.run_evolution(_config(tmp_path, callable="userfit:batch", vectorized=True, target=1e-2))
    assert flat.summary["best_value"] <= 1e-2 and flat.summary["stopped_by"] == "target_fitness"


def test_serial_ray_and_resume_give_the_same_metrics(tmp_path, ray_local):
    config = _config(tmp_path, module="rayfit")
    serial = evo.run_evolution(config)
    on_ray = evo.run_evolution(config, workers=2)  # the module reaches the workers through the runtime environment
    assert on_ray.summary["evaluator"]["type"] == "ray"
    assert metrics_without_time(on_ray.run_dir) == metrics_without_time(serial.run_dir)
    short = EvolutionRun(load_config(config, generations=12)).run()
    resumed = EvolutionRun.resume(short.run_dir, generations=30).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(serial.run_dir)
    assert resumed.summary["best_solution"] == serial.summary["best_solution"]


def test_the_seed_keyword_gets_each_individuals_seed(tmp_path):
    run = EvolutionRun(load_config(_config(tmp_path, module="seeded"), generations=2))
    import seeded  # the config's folder was put on the path for the import

    seeded.CALLS.clear()
    run.run()
    seeds = [s for s in seeded.CALLS if s is not None]
    assert len(seeds) >= 16 and len(set(seeds[:8])) == 8


def test_failures_during_the_run_get_the_worst_fitness_and_are_counted(tmp_path):
    result = evo.run_evolution(_config(tmp_path, callable="userfit:sometimes_nan", bounds=[-1, 1], x0=[-0.5, 0.1, 0.1, 0.1]))
    assert result.summary["failures"] > 0 and np.isfinite(result.summary["best_value"])
    assert "failed evaluation" in (result.run_dir / "events.log").read_text()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"callable": "nosuchmodule:f"}, "cannot import 'nosuchmodule'"),
        ({"callable": "userfit:missing"}, "has no 'missing'"),
        ({"callable": "userfit:NOT_CALLABLE"}, "not callable"),
        ({"callable": "userfit:wrong_shape"}, "returned shape (4,) for one solution"),
        ({"callable": "userfit:words"}, "not a number"),
        ({"callable": "userfit:explodes"}, "RuntimeError: boom"),
        ({"callable": "userfit:batch", "vectorized": True, "bounds": [[0, 0], [1, 1]]}, "low list has 2 values for dimension 4"),
        ({"callable": "no colon"}, "task.callable"),
        ({"bounds": None}, "needs bounds"),
        ({"representation": "binary"}, "discrete genomes need strategy.type = 'ga'"),
    ],
)
def test_a_bad_function_is_a_one_line_config_error_and_nothing_is_written(tmp_path, task, message):
    config = _config(tmp_path, **{k: v for k, v in task.items() if v is not None})
    if task.get("bounds", 0) is None:
        text = config.read_text().replace("bounds = [\n    -5,\n    5,\n]\n", "")
        config.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "evo.cli", "run", str(config), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:") and message in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_network_section_with_a_function_task_is_refused(tmp_path):
    data = {"task": {"type": "function", "callable": "evo.functions:sphere", "dimension": 2, "bounds": [-1, 1]}}
    with pytest.raises(ConfigError, match="remove the \\[network\\] section"):
        evo.parse_config({**data, "strategy": {"type": "cmaes"}, "network": {"hidden": [4]}})


def test_minimize_from_python_returns_solution_value_evaluations_and_run_dir(tmp_path):
    result = evo.minimize(
        rosenbrock, dimension=5, bounds=(-5, 5), strategy="cmaes", budget=4000, seed=2, out=tmp_path, options={"active": True}, target=1e-8
    )
    assert result.value <= 1e-8 and np.allclose(result.solution, 1.0, atol=1e-3)
    assert result.stopped_by == "target_fitness" and result.evaluations <= 4000 + 16
    assert (result.run_dir / "summary.json").is_file() and (result.run_dir / "metrics.csv").is_file()
    # A lambda works too (no reference to import), and the budget stops the run.
    flat = evo.minimize(lambda x: float(abs(x).sum()), dimension=3, bounds=(-1, 1), strategy="ga", budget=600, out=tmp_path)
    assert flat.evaluations == 600 and flat.stopped_by == "max_evaluations" and flat.fun == flat.value < 0.5


def test_minimize_on_ray_with_a_lambda(tmp_path, ray_local):
    result = evo.minimize(lambda x: float(np.sum(x * x)), dimension=3, bounds=(-2, 2), strategy="snes", budget=400, workers=2, out=tmp_path)
    assert result.summary["evaluator"]["type"] == "ray" and result.value < 0.5


def test_ipop_cmaes_restarts_with_a_doubled_population_and_then_stops(tmp_path):
    result = evo.minimize(rastrigin, dimension=3, bounds=(-5.12, 5.12), budget=60_000, seed=0, out=tmp_path, options={"restarts": 2})
    sizes = [r["evaluations"] for r in evo.read_metrics(result.run_dir / "metrics.csv")]
    steps = sorted(set(np.diff([0, *sizes])))
    assert steps == [16, 32, 64]  # the population doubled at each restart
    assert result.stopped_by == "strategy" and "after 2 restart(s)" in result.summary["strategy_stop"]


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_functions_take_one_solution_or_a_population_and_vanish_at_their_optimum(name):
    function, optimum, (low, high) = BENCHMARKS[name]
    assert function(optimum(7)) == pytest.approx(0.0, abs=1e-12)
    X = np.random.default_rng(0).uniform(low, high, (5, 7))
    values = function(X)
    assert values.shape == (5,) and np.all(values > 0)
    assert values[2] == pytest.approx(function(X[2]))


def test_benchmark_values_match_their_definitions():
    x = np.array([1.0, -2.0, 0.5])
    assert sphere(x) == pytest.approx(5.25)
    assert ellipsoid(x) == pytest.approx(1 + 1e3 * 4 + 1e6 * 0.25)
    assert rosenbrock(np.array([0.0, 0.0])) == pytest.approx(1.0)
    assert rastrigin(np.array([1.0])) == pytest.approx(1.0)
    assert ackley(np.array([1.0, 1.0])) == pytest.approx(3.6253849384403627)


def test_minimize_takes_scipy_style_bounds_one_pair_per_dimension(tmp_path):
    result = evo.minimize(lambda x: float(np.sum(x**2)), dimension=2, bounds=[(-1, 1), (5, 6)], strategy="cmaes", budget=300, out=tmp_path)
    assert -1 <= result.solution[0] <= 1 and 5 <= result.solution[1] <= 6
    assert result.solution[1] == pytest.approx(5, abs=1e-3)  # the optimum in the box is on its edge x1 = 5
    with pytest.raises(ValueError, match="3 \\(low, high\\) pairs"):
        evo.minimize(sphere, dimension=3, bounds=[(-1, 1)] * 2, budget=10, out=tmp_path)


def test_the_service_runs_the_built_in_functions_and_refuses_the_submitters_code():
    from evo.config import parse_config
    from evo.service.validation import refuse_user_code

    def config(task):
        return parse_config({"name": "svc", "generations": 2, "task": task, "strategy": {"type": "cmaes"}})

    refuse_user_code(config({"type": "function", "callable": "evo.functions:rastrigin", "dimension": 3, "bounds": [-5, 5]}))
    for task, message in (
        ({"type": "function", "callable": "evo.functions:np", "dimension": 3, "bounds": [-5, 5]}, "does not run code"),
        ({"type": "function", "callable": "mymod:f", "dimension": 3, "bounds": [-5, 5]}, "does not run code"),
        ({"type": "control", "env_id": "my_env:PointToGoal"}, "does not import classes"),
        ({"type": "control", "env_id": "CartPole-v1", "import": ["my_env"]}, "does not import modules"),
    ):
        with pytest.raises(ConfigError, match=message):
            refuse_user_code(config(task))


def test_the_runs_listing_shows_a_function_runs_value_in_its_own_sign(tmp_path):
    from evo.runs_index import read_run

    result = evo.minimize(lambda x: float(np.sum(x**2)) + 3.0, dimension=2, bounds=(-1, 1), strategy="cmaes", budget=60, out=tmp_path)
    row = read_run(result.run_dir)
    assert row["best_fitness"] == result.value and result.value >= 3.0  # minimised: positive, not the negated fitness
    assert row["network"] == "none"
