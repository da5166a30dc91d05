"""The strategy interface: ask for a population, tell its fitness.

Strategies keep DEAP inside themselves; everything outside passes NumPy arrays.
Every strategy owns its random state and can save it to (and restore it from)
plain arrays and JSON, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


def check_number(
    owner: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf, low_open: bool = False, high_open: bool = False
) -> float:
    """``value`` as a finite float inside the bounds, or a ValueError naming the strategy, the parameter and the range."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if not math.isfinite(x) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be finite and in {interval}, got {value!r}")
    return x


def check_integer(owner: str, name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, or a ValueError naming the strategy and the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_common(owner: str, n_params: Any, population: Any, seed: Any, init: Any) -> tuple[int, int, int, np.ndarray]:
    """The constructor arguments every strategy shares, checked: (n_params, population, seed, init)."""
    n_params = check_integer(owner, "n_params", n_params, 1)
    population = check_integer(owner, "population", population, 2)
    seed = check_integer(owner, "seed", seed, 0)
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (n_params,) or not np.all(np.isfinite(init)):
        raise ValueError(f"{owner}: init must be a finite array of shape ({n_params},), got shape {init.shape}")
    return n_params, population, seed, init


def random_state_to_json(state: tuple) -> list:
    """Python ``random.getstate()`` as JSON-able lists."""
    version, internal, gauss_next = state
    return [int(version), [int(x) for x in internal], gauss_next]


def random_state_from_json(data: list) -> tuple:
    """Inverse of :func:`random_state_to_json`."""
    version, internal, gauss_next = data
    return (int(version), tuple(int(x) for x in internal), None if gauss_next is None else float(gauss_next))


class Strategy(ABC):
    """Ask/tell optimiser over flat float genomes; fitness is maximised.

    Constructor arguments: ``n_params``, ``population`` (individuals per
    generation), ``seed`` (int), ``init`` (``(n_params,)`` starting point or
    centre), plus the strategy's own keyword parameters.
    """

    name: str = "strategy"

    def __init__(self, n_params: int, population: int, seed: int, init: np.ndarray, **params: Any) -> None:
        self.n_params = int(n_params)
        self.population = int(population)
        self.seed = int(seed)
        self.init = np.asarray(init, dtype=np.float64)
        self.params = params

    @abstractmethod
    def ask(self) -> np.ndarray:
        """Genomes ``(population, n_params)`` to evaluate next."""

    def check_tell(self, genomes: np.ndarray, fitness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``genomes`` and ``fitness`` as float arrays of the shapes :meth:`ask` gave, or a ValueError."""
        genomes = np.asarray(genomes, dtype=np.float64)
        fitness = np.asarray(fitness, dtype=np.float64)
        if genomes.shape != (self.population, self.n_params) or fitness.shape != (self.population,):
            raise ValueError(
                f"{self.name}: tell expects genomes ({self.population}, {self.n_params}) and fitness ({self.population},), "
                f"got {genomes.shape} and {fitness.shape}"
            )
        return genomes, fitness

    @abstractmethod
    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Update with the fitness ``(population,)`` of the genomes from :meth:`ask`.

        Failed evaluations arrive as ``-inf``.
        """

    @abstractmethod
    def best(self) -> tuple[np.ndarray, float]:
        """The genome to report and deploy, and its fitness (``nan`` if not measured).

        A GA returns its hall of fame's best; a distribution strategy its mean.
        """

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """State as ``{name: ndarray | JSON-able}``, enough to resume exactly."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
