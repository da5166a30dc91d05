"""Small configs and comparisons shared by the tests."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.run import read_metrics
from evo.strategies.neat import NEAT
from evo.tasks.boolean import ParityTask
from networks.neat import NEATSpec

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

XOR_NEAT = {
    "name": "xor-neat-test",
    "seed": 0,
    "generations": 100,
    "target_fitness": 0.95,
    "network": {"type": "neat", "max_nodes": 16, "max_connections": 64},
    "task": {"type": "xor"},
    "strategy": {"type": "neat", "population": 150},
}

ESN_SMALL = {
    "name": "esn-test",
    "seed": 0,
    "generations": 2,
    "network": {"type": "esn", "units": 60, "connectivity": 0.1},
    "task": {"type": "timeseries", "washout": 100, "n_train": 600, "n_val": 200, "n_test": 300, "horizon": 20, "starts": 5},
    "strategy": {"type": "cmaes", "population": 4, "sigma": 0.3},
    "train": {"epochs": 20, "patience": 5, "lr": 0.01, "batch_size": 64},
}


def _reference_sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for very negative z: 1 / inf = 0, as it should
        return 1.0 / (1.0 + np.exp(-z))


def reference_softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, by hand: exp of the max-shifted logits over their sum."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


# The activations' textbook formulas, written here and never imported from networks/, so that a wrong slope or
# curve in the project's own functions fails the forward-pass tests instead of being its own reference.
REFERENCE_ACTIVATIONS = {
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": lambda z: (np.exp(2 * np.clip(z, -350, 350)) - 1) / (np.exp(2 * np.clip(z, -350, 350)) + 1),
    "sigmoid": _reference_sigmoid,
    "identity": lambda z: z,
    "softmax": reference_softmax,
}


def assert_png(path: Path, min_bytes: int = 10_000) -> np.ndarray:
    """``path`` is a real, non-blank PNG image: its signature, a nontrivial size, and pixels that are not all one colour."""
    import matplotlib.image

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path}: only {len(data)} bytes"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200, image.shape
    assert image.std() > 0.01, f"{path} is blank"
    return image


def write_config(path: Path, data: dict) -> Path:
    """Write a config dict as TOML and return its path."""
    path.write_text(tomli_w.dumps(data))
    return path


def metrics_without_time(run_dir: Path) -> list[dict]:
    """Every metrics column except wall_seconds, which no two runs share."""
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in read_metrics(Path(run_dir) / "metrics.csv")]


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of a scalar function, one coordinate at a time."""
    grad = np.empty_like(x)
    for i in range(x.size):
        old = x.flat[i]
        x.flat[i] = old + eps
        up = f(x)
        x.flat[i] = old - eps
        down = f(x)
        x.flat[i] = old
        grad.flat[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||), the gradient-check measure."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


#: XOR's NEAT layout (2 inputs, 1 output): the NEAT tests' default
XOR_SPEC = NEATSpec(2, 1)


def make_neat(spec: NEATSpec = XOR_SPEC, seed: int = 0, population: int = 30, **params: Any) -> NEAT:
    """A NEAT strategy over ``spec``'s layout."""
    return NEAT(
        spec.n_params,
        population,
        seed,
        np.zeros(spec.n_params),
        n_inputs=spec.n_inputs,
        n_outputs=spec.n_outputs,
        max_nodes=spec.max_nodes,
        max_connections=spec.max_connections,
        **params,
    )


def xor_fitness(genomes: np.ndarray) -> np.ndarray:
    """ParityTask's 1 - MSE on XOR, for NEAT genomes of :data:`XOR_SPEC`."""
    return ParityTask(2).evaluate(XOR_SPEC, genomes, np.zeros(len(genomes)), 0)


@contextmanager
def global_random_untouched() -> Iterator[None]:
    """Asserts that the block leaves Python's and NumPy's global random states as it found them."""
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    yield
    assert (random.random(), np.random.random()) == expected


def ask_tell(strategy, generations: int, fitness: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Ask, score and tell for some generations; return the populations asked."""
    asked = []
    for _ in range(generations):
        genomes = strategy.ask()
        asked.append(genomes)
        strategy.tell(genomes, fitness(genomes))
    return asked


def to_disk_and_back(state: dict[str, Any]) -> dict[str, Any]:
    """Round-trip a strategy state as a checkpoint does: arrays through .npz, the rest through strict JSON."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    others = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    assert all(a.dtype != object for a in arrays.values())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        restored = {k: loaded[k] for k in loaded.files}
    restored.update(json.loads(json.dumps(others, allow_nan=False)))
    return restored
