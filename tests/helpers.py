"""Small configs and comparisons shared by the tests."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from evo.run import read_metrics

XOR = {
    "name": "xor-test",
    "seed": 3,
    "generations": 300,
    "target_fitness": 0.95,
    "network": {"hidden": [4], "activation": "tanh"},
    "task": {"type": "xor"},
    "strategy": {"type": "cmaes", "population": 16, "sigma": 1.0},
}

CARTPOLE = {
    "name": "cartpole-test",
    "seed": 11,
    "generations": 4,
    "checkpoint_every": 2,
    "network": {"hidden": [8]},
    "task": {"type": "control", "env_id": "CartPole-v1", "episodes": 2, "max_steps": 200, "test_episodes": 5},
    "strategy": {"type": "ga", "population": 12, "sigma": 0.3},
}

DIGITS = {
    "name": "digits-test",
    "seed": 5,
    "generations": 6,
    "checkpoint_every": 3,
    "validate_every": 2,
    "network": {"hidden": [8]},
    "task": {"type": "digits", "batch_size": 64},
    "strategy": {"type": "snes", "population": 10, "sigma": 0.1},
}


def write_config(path: Path, data: dict) -> Path:
    """Write a config dict as TOML and return its path."""
    path.write_text(tomli_w.dumps(data))
    return path


def metrics_without_time(run_dir: Path) -> list[dict]:
    """Every metrics column except wall_seconds, which no two runs share."""
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in read_metrics(Path(run_dir) / "metrics.csv")]
