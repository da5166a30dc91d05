"""A user's fitness functions, for `[task] type = "function"` (see function.toml) or `evo.minimize`.

A function takes one solution (a NumPy array of `dimension` numbers) and
returns one number; with `vectorized = true` it takes a (P, dimension) array
and returns P numbers. A `seed` keyword, if present, gets a per-solution seed
(for noisy or simulated objectives), so results repeat on any number of workers.
"""

from __future__ import annotations

import numpy as np


def shifted_rastrigin(x: np.ndarray) -> float:
    """Rastrigin's function with its optimum moved to x = 1.2 (minimum 0)."""
    z = np.asarray(x) - 1.2
    return float(10 * z.size + np.sum(z * z - 10 * np.cos(2 * np.pi * z)))


def noisy_sphere(X: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """A population at once: the sphere plus a little noise drawn from each row's seed."""
    noise = np.array([np.random.default_rng(int(s)).normal(scale=1e-3) for s in seed])
    return np.sum(X * X, axis=1) + noise
