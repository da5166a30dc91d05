"""A user's own environment and task class named in a config: serial, on Ray (modules shipped to the workers), resumed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evo.build import build_task
from evo.config import ConfigError, load_config, parse_config
from evo.run import EvolutionRun, run_evolution
from tests.helpers import metrics_without_time, write_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _copy_example(tmp_path: Path, module: str, as_name: str) -> None:
    # A fresh module name per test: Python caches modules, and each test must import its own file.
    shutil.copy(EXAMPLES / f"{module}.py", tmp_path / f"{as_name}.py")


def _env_config(tmp_path: Path, module: str, **task) -> Path:
    data = {
        "generations": 4,
        "checkpoint_every": 2,
        "out": str(tmp_path / "runs"),
        "network": {"hidden": [4]},
        "task": {"type": "control", "max_steps": 30, "episodes": 2, "test_episodes": 3, "val_episodes": 2, **task},
        "strategy": {"type": "cmaes", "population": 6},
    }
    return write_config(tmp_path / "env.toml", data)


def test_an_environment_class_runs_serially_on_ray_and_after_resume_alike(tmp_path, ray_local):
    _copy_example(tmp_path, "my_env", "userenv_a")
    config = _env_config(tmp_path, "userenv_a", env_id="userenv_a:PointToGoal", env_kwargs={"friction": 0.2})
    serial = run_evolution(config)
    assert serial.summary["task"]["env_id"] == "evo_user/userenv_a.PointToGoal"
    assert serial.summary["test_mean_return"] < 0  # rewards are minus distances
    on_ray = run_evolution(config, workers=2)
    assert metrics_without_time(on_ray.run_dir) == metrics_without_time(serial.run_dir)
    short = EvolutionRun(load_config(config, generations=2)).run()
    resumed = EvolutionRun.resume(short.run_dir, generations=4).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(serial.run_dir)


def test_an_environment_registered_by_an_imported_module(tmp_path):
    _copy_example(tmp_path, "my_env", "userenv_b")
    (tmp_path / "userenv_b.py").write_text((tmp_path / "userenv_b.py").read_text().replace('"PointToGoal-v0"', '"UserPoint-v3"'))
    config = write_config(
        tmp_path / "reg.toml",
        {
            "generations": 2,
            "out": str(tmp_path / "runs"),
            "task": {"type": "control", "env_id": "UserPoint-v3", "import": ["userenv_b"], "episodes": 1},
            "strategy": {"type": "snes", "population": 4},
        },
    )
    result = run_evolution(config)
    assert result.summary["task"]["max_steps"] == 100  # the time limit the module registered
    assert 'import = [\n    "userenv_b",\n]' in (result.run_dir / "config.toml").read_text()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"env_id": "nosuchenvmodule:Env"}, "cannot import 'nosuchenvmodule'"),
        ({"env_id": "Nope-v0", "import": ["nosuchregistry"]}, "task.import = 'nosuchregistry'"),
        ({"env_id": "Nope-v0"}, "is not registered in gymnasium"),
    ],
)
def test_a_bad_environment_reference_is_a_config_error(tmp_path, task, message):
    with pytest.raises(ConfigError, match=message):
        build_task(load_config(_env_config(tmp_path, "x", **task)))


def _task_config(tmp_path: Path, module: str, **section) -> Path:
    data = {
        "generations": 6,
        "checkpoint_every": 3,
        "out": str(tmp_path / "runs"),
        "network": {"hidden": [6]},
        "task": {"type": "python", "class": f"{module}:SineFit", "kwargs": {"frequency": 1.0, "points": 16}, **section},
        "strategy": {"type": "snes", "population": 8},
    }
    return write_config(tmp_path / "task.toml", data)


def test_a_task_class_runs_serially_on_ray_and_after_resume_alike(tmp_path, ray_local):
    _copy_example(tmp_path, "my_task", "usertask_a")
    config = _task_config(tmp_path, "usertask_a")
    serial = run_evolution(config)
    assert serial.summary["task"]["name"] == "sine-fit(frequency=1.0)" and serial.summary["test_mse"] > 0
    assert (serial.run_dir / "model.json").is_file()  # a network task's model is saved as for built-in tasks
    on_ray = run_evolution(config, workers=2)
    assert metrics_without_time(on_ray.run_dir) == metrics_without_time(serial.run_dir)
    short = EvolutionRun(load_config(config, generations=3)).run()
    resumed = EvolutionRun.resume(short.run_dir, generations=6).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(serial.run_dir)


def test_a_task_class_works_with_another_network_type(tmp_path):
    _copy_example(tmp_path, "my_task", "usertask_b")
    data = load_config(_task_config(tmp_path, "usertask_b")).to_dict()
    data.update(network={"type": "neat", "max_nodes": 12, "max_connections": 30}, strategy={"type": "neat", "population": 10})
    result = run_evolution(parse_config(data))
    assert result.summary["network"]["type"] == "neat" and result.summary["test_mse"] > 0


def test_bad_task_classes_are_config_errors(tmp_path):
    _copy_example(tmp_path, "my_task", "usertask_c")
    (tmp_path / "usertask_c.py").write_text((tmp_path / "usertask_c.py").read_text() + "\n\nclass NotATask:\n    pass\n")
    config = load_config(_task_config(tmp_path, "usertask_c")).to_dict()
    config["task"]["class"] = "usertask_c:NotATask"
    with pytest.raises(ConfigError, match="is not a subclass of evo.tasks.base.Task"):
        build_task(parse_config(config))
    with pytest.raises(ConfigError, match="does not take them"):
        build_task(load_config(_task_config(tmp_path, "usertask_c", kwargs={"speed": 1})))
    with pytest.raises(ConfigError, match="points = 2: must be >= 4"):
        build_task(load_config(_task_config(tmp_path, "usertask_c", kwargs={"points": 2})))
