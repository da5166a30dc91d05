"""Seeds derived from (run seed, stream, generation, index).

Every source of randomness in a run draws from a seed computed here, so an
individual's fitness depends only on the run seed, the generation and its
index in the population, never on which worker or chunk evaluated it.
The mixing function is SplitMix64 (Steele et al., 2014), vectorised in NumPy.
"""

from __future__ import annotations

import numpy as np

# Streams keep the seeds of different uses apart.
STREAM_FITNESS = 1
STREAM_TEST = 2
STREAM_STRATEGY = 3
STREAM_GENERATION = 4
STREAM_INIT = 5

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser applied element-wise to uint64 values."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def mix(*keys: int | np.ndarray) -> np.ndarray:
    """Hash a sequence of integer keys (scalars or arrays, broadcast) into uint64."""
    # A 0-d array: the same values (and, from the first key on, the same result types) as the bare scalar.
    h: np.ndarray = np.asarray(np.uint64(0x243F6A8885A308D3))
    for k in keys:
        k = np.asarray(k).astype(np.uint64)
        h = splitmix64(h ^ splitmix64(k))
    return h


def individual_seeds(run_seed: int, generation: int, n: int, stream: int = STREAM_FITNESS) -> np.ndarray:
    """Seeds ``(n,)`` uint64 for individuals 0..n-1 of a generation."""
    return mix(run_seed, stream, generation, np.arange(n, dtype=np.uint64))


def generation_seed(run_seed: int, generation: int) -> int:
    """One seed shared by every individual of a generation (common random numbers)."""
    return int(mix(run_seed, STREAM_GENERATION, generation))


def stream_seed(run_seed: int, stream: int) -> int:
    """A seed for one named use of randomness in a run (strategy, test set, init)."""
    return int(mix(run_seed, stream))


def uniform_from_keys(keys: np.ndarray, count: int) -> np.ndarray:
    """Uniform floats in [0, 1), shape ``(len(keys), count)``, a pure function of each key.

    Used to draw per-episode initial states in a vector environment without
    one Generator object per episode.
    """
    keys = np.asarray(keys, dtype=np.uint64)
    j = np.arange(count, dtype=np.uint64)
    bits = mix(keys[:, None], j[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def to_int32_seed(seed: int | np.uint64) -> int:
    """Fold a 64-bit seed into a non-negative 31-bit int (what many libraries accept)."""
    return int(np.uint64(seed) % np.uint64(2**31 - 1))
